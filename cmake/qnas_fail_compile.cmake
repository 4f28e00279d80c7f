# Runs by qnas_add_fail_test: compiles SOURCE and passes only if compilation fails with a
# diagnostic that matches REGEX.
set(args -std=c++20 -fsyntax-only)
foreach(i ${INCLUDES})
  list(APPEND args -I${i})
endforeach()
execute_process(COMMAND ${CXX} ${args} ${SOURCE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
if(NOT "${out}${err}" MATCHES "${REGEX}")
  message(FATAL_ERROR "${SOURCE} failed to compile, but without a diagnostic matching '${REGEX}':\n${err}")
endif()
message(STATUS "${SOURCE}: rejected as expected ('${REGEX}')")
