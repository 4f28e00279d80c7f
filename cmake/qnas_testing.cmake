# Helpers for the qnas test suite, examples and benchmarks.

# Warnings for our own translation units (not exported to consumers).
add_library(qnas_warnings INTERFACE)
target_compile_options(qnas_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)

# doctest's main() compiled once for every test executable.
find_package(doctest REQUIRED)
add_library(qnas_doctest_main STATIC ${PROJECT_SOURCE_DIR}/tests/doctest_main.cpp)
target_link_libraries(qnas_doctest_main PUBLIC doctest::doctest)
target_compile_features(qnas_doctest_main PUBLIC cxx_std_20)

# The built-in GEMM's kernels compiled once for every test and example (nn/gemm_kernel.hpp,
# docs/networks.md "Build time"): the executables' own translation units only declare them.
add_library(qnas_gemm_kernels STATIC ${PROJECT_SOURCE_DIR}/tests/gemm_kernels.cpp)
target_link_libraries(qnas_gemm_kernels PUBLIC qnas::nn)
target_compile_definitions(qnas_gemm_kernels PUBLIC QNAS_GEMM_KERNELS_EXTERN)

# qnas_add_test(NAME <name> SOURCES <files...> [LABELS <labels...>] [TIMEOUT <s>])
# One executable per module keeps translation units small and links once.
function(qnas_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE qnas::qnas qnas_doctest_main qnas_gemm_kernels qnas_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "unit;${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "QNAS_SHARED_DATA=${QNAS_SHARED_DATA}")
endfunction()

# qnas_add_fail_test(NAME <name> SOURCE <file> REGEX <regex>)
# A must-not-compile check: compiling SOURCE must fail, with a diagnostic matching REGEX
# (the message that names the offending parameter).
function(qnas_add_fail_test)
  cmake_parse_arguments(T "" "NAME;SOURCE;REGEX" "" ${ARGN})
  set(incs ${PROJECT_SOURCE_DIR}/include)
  foreach(dep xtensor xtl Boost::headers nlohmann_json::nlohmann_json)
    if(TARGET ${dep})
      get_target_property(d ${dep} INTERFACE_INCLUDE_DIRECTORIES)
      if(d)
        list(APPEND incs ${d})
      endif()
    endif()
  endforeach()
  list(REMOVE_DUPLICATES incs)
  add_test(NAME ${T_NAME}
    COMMAND ${CMAKE_COMMAND} -DCXX=${CMAKE_CXX_COMPILER} "-DINCLUDES=${incs}"
            -DSOURCE=${CMAKE_CURRENT_SOURCE_DIR}/${T_SOURCE} "-DREGEX=${T_REGEX}"
            -P ${PROJECT_SOURCE_DIR}/cmake/qnas_fail_compile.cmake)
  set_tests_properties(${T_NAME} PROPERTIES LABELS "fail" TIMEOUT 120)
endfunction()

# qnas_add_example(NAME <name> SOURCES <files...> [ARGS <args...>] [TIMEOUT <s>])
# Examples are self-checking programs; CI runs each in its reduced mode.
function(qnas_add_example)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE qnas::qnas qnas_gemm_kernels qnas_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  # An example whose data set is absent exits with qnas::examples::skipped_status (77): ctest
  # reports it as skipped, not passed.
  set_tests_properties(${T_NAME} PROPERTIES LABELS "example" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "QNAS_SHARED_DATA=${QNAS_SHARED_DATA}")
endfunction()

# Where the shared data sets live (MNIST test set, NAS-Bench-201 table); tests that need them
# skip with a message when the folder is absent.
if(NOT DEFINED QNAS_SHARED_DATA)
  get_filename_component(_qnas_shared "${PROJECT_SOURCE_DIR}/../shared/data" ABSOLUTE)
  set(QNAS_SHARED_DATA "${_qnas_shared}" CACHE PATH "Folder holding mnist/ and nasbench201/")
endif()

# qnas_add_test_folder(<module>): one test executable per tests/<module>/test_*.cpp, named
# test_<module>_<stem>, labelled <module>. Adding a file is enough; no CMake edit needed.
function(qnas_add_test_folder module)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_*.cpp)
  foreach(src ${sources})
    get_filename_component(stem ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "" stem ${stem})
    qnas_add_test(NAME test_${module}_${stem} SOURCES ${src} LABELS ${module})
  endforeach()
endfunction()

# qnas_add_fail_folder(): one must-not-compile check per *.cpp in the folder; the file's first
# line is `// expect-error: <regex>` naming the diagnostic the compiler must print.
function(qnas_add_fail_folder)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  foreach(src ${sources})
    get_filename_component(stem ${src} NAME_WE)
    file(STRINGS ${src} first LIMIT_COUNT 1)
    if(NOT first MATCHES "^// expect-error: (.+)$")
      message(FATAL_ERROR "${src}: the first line must be '// expect-error: <regex>'")
    endif()
    qnas_add_fail_test(NAME fail_${stem} SOURCE ${stem}.cpp REGEX "${CMAKE_MATCH_1}")
  endforeach()
endfunction()

# qnas_add_example_folder(): one example per examples/NN_name.cpp, named example_NN_name, run
# by ctest with no arguments (its reduced, CI-sized mode).
function(qnas_add_example_folder)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/[0-9][0-9]_*.cpp)
  foreach(src ${sources})
    get_filename_component(stem ${src} NAME_WE)
    qnas_add_example(NAME example_${stem} SOURCES ${src})
  endforeach()
endfunction()
