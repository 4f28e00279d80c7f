# The layering rule of DESIGN.md: a module includes only the modules below it.
#   core <- formats <- energy <- nn <- train <- search;  data and io sit beside them.
# Run as `cmake -DINCLUDE_DIR=<include/qnas> -P qnas_layering_check.cmake`; fails naming every
# header that includes a module it may not.
if(NOT INCLUDE_DIR)
  message(FATAL_ERROR "qnas_layering_check: pass -DINCLUDE_DIR=<path to include/qnas>")
endif()

# module -> the modules its headers may include (besides itself)
set(_allowed_core "")
set(_allowed_formats "core")
set(_allowed_energy "core;formats")
set(_allowed_data "core")
set(_allowed_io "core")
set(_allowed_nn "core;formats;energy;data;io")
set(_allowed_train "core;formats;energy;data;io;nn")
# space/supernet.hpp still builds its branches from nn layers; the supernet engine moves to nn/
# (one typed description per layer), after which space may include only core and formats.
set(_allowed_space "core;formats;energy;data;nn")
set(_allowed_testing "core;formats;data;energy;nn")

set(_violations "")
foreach(module core formats energy data io nn train space testing)
  file(GLOB_RECURSE _headers RELATIVE ${INCLUDE_DIR} ${INCLUDE_DIR}/${module}/*.hpp)
  foreach(h ${_headers})
    file(STRINGS ${INCLUDE_DIR}/${h} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]qnas/")
    foreach(line ${_includes})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]qnas/([A-Za-z0-9_]+).*$" "\\1" target "${line}")
      if(target STREQUAL module)
        continue()
      endif()
      # qnas/<module>.hpp (a module's umbrella header) counts as that module
      string(REGEX REPLACE "\\.hpp$" "" target "${target}")
      list(FIND _allowed_${module} ${target} _at)
      if(_at EQUAL -1)
        list(APPEND _violations "${h}: ${line} (${module}/ may include only: ${_allowed_${module}})")
      endif()
    endforeach()
  endforeach()
endforeach()

if(_violations)
  list(JOIN _violations "\n  " _text)
  message(FATAL_ERROR "qnas layering: headers include modules above them:\n  ${_text}")
endif()
message(STATUS "qnas layering: every module includes only the modules below it")
