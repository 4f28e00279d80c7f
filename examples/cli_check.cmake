# Runs an example and checks its exit status and output: the ctest cases for the examples'
# command line and bad input (docs/bad_input.md). Called by examples/CMakeLists.txt as
#   cmake -DCMD=<exe>|<arg>|... -DRC=<status> -DREGEX=<regex> [options] -P cli_check.cmake
# Lists are joined with '|' because add_test would split a ';' list into separate arguments.
# Options, done in this order before CMD runs:
#   CLEAN=<dir>            removed first (ctest may run the case again in the same build folder)
#   PREPARE_FILE=<path>    written (a few bytes), its folder created
#   GARBAGE_MNIST=<dir>    an MNIST folder whose two files are text, not gzip/IDX
#   TRUNCATED_MNIST=<dir>  an MNIST folder whose image file is cut after 100,000 bytes (copied
#                          from SHARED_MNIST; prints "skipped:" when that folder is absent)
#   FIRST=<exe>|<arg>|...  a run that must succeed before CMD (to test --resume)
cmake_minimum_required(VERSION 3.20)

function(run_command list out_rc out_text)
  string(REPLACE "|" ";" argv "${list}")
  execute_process(COMMAND ${argv} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_rc} "${rc}" PARENT_SCOPE)
  set(${out_text} "${out}${err}" PARENT_SCOPE)
endfunction()

if(DEFINED CLEAN)
  file(REMOVE_RECURSE "${CLEAN}")
endif()
if(DEFINED PREPARE_FILE)
  get_filename_component(dir "${PREPARE_FILE}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  file(WRITE "${PREPARE_FILE}" "from an earlier run\n")
endif()
if(DEFINED GARBAGE_MNIST)
  file(REMOVE_RECURSE "${GARBAGE_MNIST}")
  file(WRITE "${GARBAGE_MNIST}/t10k-images-idx3-ubyte.gz" "not a gzip stream\n")
  file(WRITE "${GARBAGE_MNIST}/t10k-labels-idx1-ubyte.gz" "not a gzip stream\n")
endif()
if(DEFINED TRUNCATED_MNIST)
  if(NOT EXISTS "${SHARED_MNIST}/t10k-images-idx3-ubyte.gz" OR NOT EXISTS "${SHARED_MNIST}/t10k-labels-idx1-ubyte.gz")
    message("skipped: no MNIST at ${SHARED_MNIST} to truncate")
    return()
  endif()
  file(REMOVE_RECURSE "${TRUNCATED_MNIST}")
  file(MAKE_DIRECTORY "${TRUNCATED_MNIST}")
  file(COPY "${SHARED_MNIST}/t10k-labels-idx1-ubyte.gz" DESTINATION "${TRUNCATED_MNIST}")
  # CMake strings cannot hold NUL bytes, so head(1) cuts the binary file.
  execute_process(COMMAND head -c 100000 "${SHARED_MNIST}/t10k-images-idx3-ubyte.gz"
                  OUTPUT_FILE "${TRUNCATED_MNIST}/t10k-images-idx3-ubyte.gz" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cannot truncate the MNIST images with head -c: ${rc}")
  endif()
endif()
if(DEFINED FIRST)
  run_command("${FIRST}" rc text)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the first run (${FIRST}) failed with ${rc}:\n${text}")
  endif()
endif()

run_command("${CMD}" rc text)
message("${text}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "expected exit status ${RC}, got '${rc}'")
endif()
if(NOT text MATCHES "${REGEX}")
  message(FATAL_ERROR "the output does not match '${REGEX}'")
endif()
