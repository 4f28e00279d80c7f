# Run by the headers_self_contained test (tests/headers/CMakeLists.txt): builds TARGET, whose
# objects are the public headers each compiled alone against its module's target, with JOBS
# parallel jobs, then fails naming
#   - every header that does not compile alone (its translation unit failed), and
#   - every header that includes a third-party library its module's target does not link, read
#     from the compiler's list of the files each translation unit included.
# Arguments: BUILD_DIR, MANIFEST (written by tests/headers/CMakeLists.txt), TARGET, JOBS,
# GENERATOR and MAKE_PROGRAM (the build tree's CMAKE_GENERATOR and CMAKE_MAKE_PROGRAM).
foreach(arg BUILD_DIR MANIFEST TARGET JOBS GENERATOR MAKE_PROGRAM)
  if(NOT ${arg})
    message(FATAL_ERROR "qnas_header_check: pass -D${arg}=...")
  endif()
endforeach()
include(${MANIFEST})

# Keep going after a failure, so that one run names every header that does not compile alone.
if(GENERATOR STREQUAL "Ninja")
  set(keep_going -k 0)
elseif(GENERATOR MATCHES "Makefiles")
  set(keep_going -k)
else()
  message(FATAL_ERROR "qnas_header_check: generator '${GENERATOR}' is not supported (Ninja or Makefiles): "
                      "the check reads the compiler's dependency lists the way these two store them")
endif()
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} --parallel ${JOBS} -- ${keep_going}
                RESULT_VARIABLE build_rc OUTPUT_VARIABLE build_out ERROR_VARIABLE build_err)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")

# Objects that failed: named on a Ninja "FAILED:" line, or absent after the build.
string(REGEX MATCHALL "FAILED: [^\n]*" failed_lines "${build_out}")

# header -> group, object
list(LENGTH QNAS_HEADERS n_headers)
set(not_alone "")
set(foreign "")
set(index 0)
foreach(h ${QNAS_HEADERS})
  list(GET QNAS_HEADER_GROUPS ${index} group)
  math(EXPR index "${index} + 1")
  set(object "")
  foreach(o ${QNAS_GROUP_OBJECTS_${group}})
    string(FIND "${o}" "/tu/${h}.cpp" at REVERSE)
    if(at GREATER -1)
      set(object "${o}")
      break()
    endif()
  endforeach()
  if(NOT object)
    message(FATAL_ERROR "qnas_header_check: no object for ${h} in group ${group}; reconfigure the build tree")
  endif()
  cmake_path(SET object NORMALIZE "${object}")  # CMake names some objects .../dir/./tu/...
  file(RELATIVE_PATH rel ${BUILD_DIR} ${object})
  set(failed FALSE)
  if(NOT EXISTS ${object})
    set(failed TRUE)
  endif()
  foreach(line ${failed_lines})
    string(FIND "${line} " " ${rel} " at)
    if(at GREATER -1)
      set(failed TRUE)
    endif()
  endforeach()
  if(failed)
    list(APPEND not_alone "${h} (against ${QNAS_GROUP_TARGETS_${group}})")
    continue()
  endif()

  # the files this translation unit included
  if(GENERATOR STREQUAL "Ninja")
    execute_process(COMMAND ${MAKE_PROGRAM} -C ${BUILD_DIR} -t deps ${rel} RESULT_VARIABLE rc
                    OUTPUT_VARIABLE deps ERROR_VARIABLE err)
    if(NOT rc EQUAL 0 OR NOT deps MATCHES "#deps")
      message(FATAL_ERROR "qnas_header_check: ${MAKE_PROGRAM} -t deps ${rel} gave no dependency list: ${deps}${err}")
    endif()
    string(FIND "${deps}" "\n" eol)  # drop the object's own line (REGEX REPLACE "^..." would
    math(EXPR eol "${eol} + 1")      # match again at the start of every following line)
    string(SUBSTRING "${deps}" ${eol} -1 deps)
  else()
    if(NOT EXISTS ${object}.d)
      message(FATAL_ERROR "qnas_header_check: no dependency file ${object}.d")
    endif()
    file(READ ${object}.d deps)
    string(FIND "${deps}" ": " colon)  # drop "object:"
    math(EXPR colon "${colon} + 1")
    string(SUBSTRING "${deps}" ${colon} -1 deps)
    string(REPLACE "\\\n" "\n" deps "${deps}")
    string(REGEX REPLACE "[ \t]+" "\n" deps "${deps}")
  endif()
  string(STRIP "${deps}" deps)
  string(REGEX REPLACE "[ \t\r]*\n[ \t\r]*" ";" deps "${deps}")
  list(FILTER deps EXCLUDE REGEX "^$")
  if(NOT deps)
    message(FATAL_ERROR "qnas_header_check: empty dependency list for ${h}")
  endif()
  foreach(lib ${QNAS_GROUP_FORBIDDEN_${group}})
    set(hits ${deps})
    list(FILTER hits INCLUDE REGEX "${QNAS_LIB_REGEX_${lib}}")
    if(hits)
      list(GET hits 0 first)
      list(APPEND foreign "${h} includes ${first} (${lib}), which ${QNAS_GROUP_TARGETS_${group}} does not link")
    endif()
  endforeach()
endforeach()

if(not_alone OR foreign)
  if(not_alone)
    message("${build_out}\n${build_err}")
  endif()
  set(text "")
  if(not_alone)
    list(LENGTH not_alone n)
    list(JOIN not_alone "\n  " list)
    string(APPEND text "${n} public header(s) do not compile alone:\n  ${list}\n")
  endif()
  if(foreign)
    list(JOIN foreign "\n  " list)
    string(APPEND text "public header(s) include a library their module's target does not link "
                       "(docs/modules.md):\n  ${list}\n")
  endif()
  message(FATAL_ERROR "qnas header check (${n_headers} headers, ${seconds} s):\n${text}")
endif()
if(NOT build_rc EQUAL 0)
  message(FATAL_ERROR "qnas header check: building ${TARGET} failed, yet every header's object exists:\n"
                      "${build_out}\n${build_err}")
endif()
message(STATUS "qnas header check: ${n_headers} public headers compile alone against their module's "
               "target and include only the libraries it links (${seconds} s, ${JOBS} jobs)")
