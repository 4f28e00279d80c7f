# libFuzzer targets (fuzz/): built only with clang, which provides -fsanitize=fuzzer
# (Debian: clang-14 + libclang-rt-14-dev). `cmake --workflow --preset fuzz` configures with
# clang++-14 and smoke-runs every target; docs/bad_input.md says how to run one for longer.

if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(_qnas_fuzz_default ON)
else()
  set(_qnas_fuzz_default OFF)
endif()
option(QNAS_BUILD_FUZZ "Build the libFuzzer targets and their ctest smoke runs (needs clang)" ${_qnas_fuzz_default})

if(QNAS_BUILD_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(WARNING "QNAS_BUILD_FUZZ needs clang (libFuzzer); ${CMAKE_CXX_COMPILER_ID} cannot build the fuzz "
                  "targets, so they are skipped. Use: cmake --workflow --preset fuzz")
  set(QNAS_BUILD_FUZZ OFF)
endif()

# Seconds each ctest smoke run fuzzes (the long runs are manual; see docs/bad_input.md).
set(QNAS_FUZZ_SMOKE_SECONDS 20 CACHE STRING "Seconds of fuzzing per target in the ctest smoke run")

# qnas_add_fuzz_target(NAME <name> SOURCE <file> [MAX_LEN <bytes>] [DICT <file>])
# An ASan + UBSan + libFuzzer executable `<name>` and a ctest `<name>_smoke` (label `fuzz`) that
# fuzzes it for QNAS_FUZZ_SMOKE_SECONDS from the seed corpus fuzz/corpus/<name>. New inputs go
# to a scratch corpus in the build tree; the committed seeds are only read.
function(qnas_add_fuzz_target)
  cmake_parse_arguments(F "" "NAME;SOURCE;MAX_LEN;DICT" "" ${ARGN})
  if(NOT F_MAX_LEN)
    set(F_MAX_LEN 4096)
  endif()
  set(san -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_executable(${F_NAME} ${F_SOURCE})
  target_link_libraries(${F_NAME} PRIVATE qnas::qnas)
  # -Wno-pass-failed: `#pragma omp simd` loops that ASan instrumentation keeps scalar warn otherwise
  target_compile_options(${F_NAME} PRIVATE ${san} -g -O1 -Wno-pass-failed)
  target_link_options(${F_NAME} PRIVATE ${san})
  if(NOT TARGET qnas_fuzz_targets)
    add_custom_target(qnas_fuzz_targets)
  endif()
  add_dependencies(qnas_fuzz_targets ${F_NAME})

  set(dict)
  if(F_DICT)
    set(dict -dict=${CMAKE_CURRENT_SOURCE_DIR}/${F_DICT})
  endif()
  set(scratch ${CMAKE_CURRENT_BINARY_DIR}/corpus/${F_NAME})
  file(MAKE_DIRECTORY ${scratch})
  add_test(NAME ${F_NAME}_smoke
    COMMAND ${F_NAME} -max_total_time=${QNAS_FUZZ_SMOKE_SECONDS} -max_len=${F_MAX_LEN} -rss_limit_mb=2048
            -timeout=10 -print_final_stats=1 ${dict} ${scratch} ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${F_NAME}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  math(EXPR limit "${QNAS_FUZZ_SMOKE_SECONDS} * 3 + 60")
  set_tests_properties(${F_NAME}_smoke PROPERTIES LABELS "fuzz" TIMEOUT ${limit}
    ENVIRONMENT "ASAN_OPTIONS=abort_on_error=1:detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()

# qnas_add_random_fuzz_driver(NAME <name> SOURCE <file> [RUNS <n>])
# For compilers without libFuzzer: the target linked with random_driver.cpp as `<name>_random`
# and a ctest of the same name (label `fuzz_random`) feeding it RUNS seeded random inputs. Used
# for the checks clang 14 cannot compile (fuzz_formats.cpp, formats with double parameters).
function(qnas_add_random_fuzz_driver)
  cmake_parse_arguments(F "" "NAME;SOURCE;RUNS" "" ${ARGN})
  if(NOT F_RUNS)
    set(F_RUNS 20000)
  endif()
  add_executable(${F_NAME}_random ${F_SOURCE} ${PROJECT_SOURCE_DIR}/fuzz/random_driver.cpp)
  target_link_libraries(${F_NAME}_random PRIVATE qnas::qnas)
  add_test(NAME ${F_NAME}_random COMMAND ${F_NAME}_random ${F_RUNS} 1)
  set_tests_properties(${F_NAME}_random PROPERTIES LABELS "fuzz_random;robustness" TIMEOUT 600)
endfunction()
