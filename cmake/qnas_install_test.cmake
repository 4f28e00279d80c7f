# Runs by the install_consumer test: installs the build tree into WORK_DIR/prefix, then builds
# and runs two consumer projects against that prefix only:
#   SOURCE_DIR               find_package(qnas) and qnas::qnas, the whole library;
#   SOURCE_DIR/formats_only  find_package(qnas COMPONENTS formats) and qnas::formats, configured
#                            with BLAS, zlib, nlohmann_json, Boost, xsimd, Threads and MPI made
#                            unfindable; its link line and its NEEDED libraries must name none
#                            of BLAS, zlib or JSON.
# Arguments: BUILD_DIR, SOURCE_DIR, WORK_DIR, CXX, GENERATOR, READELF (optional).
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

# The command that links `target` in the build folder `dir` (Ninja or Makefiles).
function(link_command dir target out_var)
  if(EXISTS ${dir}/CMakeFiles/${target}.dir/link.txt)
    file(READ ${dir}/CMakeFiles/${target}.dir/link.txt cmd)
  else()
    file(STRINGS ${dir}/CMakeCache.txt make_line REGEX "^CMAKE_MAKE_PROGRAM:")
    string(REGEX REPLACE "^[^=]*=" "" make "${make_line}")
    execute_process(COMMAND ${make} -C ${dir} -t commands ${target} RESULT_VARIABLE rc OUTPUT_VARIABLE cmds
                    ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "cannot list the commands of ${target} in ${dir} (generator ${GENERATOR}): ${err}")
    endif()
    string(REGEX MATCH "[^\n]*-o [^ \n]*${target}[^\n]*\n?$" cmd "${cmds}")
  endif()
  if(NOT cmd)
    message(FATAL_ERROR "no link command found for ${target} in ${dir}")
  endif()
  set(${out_var} "${cmd}" PARENT_SCOPE)
endfunction()

# Libraries that a program which only quantizes must not link (case-insensitive).
set(heavy_regex "(blas|blis|libz\\.|-lz( |$)|zlib|json|boost)")

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)

# The whole library.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/qnas_consumer)
# The link-line check below must be able to fail: qnas::qnas does bring a BLAS and zlib.
link_command(${WORK_DIR}/build qnas_consumer full_link)
string(REPLACE "${WORK_DIR}" "<work>" full_link_lower "${full_link}")
string(TOLOWER "${full_link_lower}" full_link_lower)
if(NOT full_link_lower MATCHES "blas|blis" OR NOT full_link_lower MATCHES "libz\\.|-lz( |$)")
  message(FATAL_ERROR "the qnas::qnas consumer's link line names no BLAS or no zlib, so the formats-only "
                      "check cannot tell anything:\n${full_link}")
endif()

# Formats only, with the heavy dependencies unfindable: find_package(qnas COMPONENTS formats)
# must not look for them (a REQUIRED find of a disabled package is an error).
set(disabled "")
foreach(pkg BLAS LAPACK ZLIB nlohmann_json Boost xsimd Threads MPI)
  list(APPEND disabled -DCMAKE_DISABLE_FIND_PACKAGE_${pkg}=ON)
endforeach()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/formats_only -B ${WORK_DIR}/formats_build -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release ${disabled})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/formats_build)
run(${WORK_DIR}/formats_build/qnas_formats_consumer)

link_command(${WORK_DIR}/formats_build qnas_formats_consumer formats_link)
string(REPLACE "${WORK_DIR}" "<work>" formats_link_lower "${formats_link}")  # names of our own folders
string(TOLOWER "${formats_link_lower}" formats_link_lower)
if(formats_link_lower MATCHES "${heavy_regex}")
  message(FATAL_ERROR "the qnas::formats consumer links '${CMAKE_MATCH_1}':\n${formats_link}")
endif()

if(NOT READELF)
  find_program(READELF NAMES readelf)
endif()
if(NOT READELF)
  message(FATAL_ERROR "readelf not found (binutils): cannot list the formats-only consumer's NEEDED libraries")
endif()
execute_process(COMMAND ${READELF} -d ${WORK_DIR}/formats_build/qnas_formats_consumer RESULT_VARIABLE rc
                OUTPUT_VARIABLE dyn ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} -d qnas_formats_consumer failed: ${err}")
endif()
string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]*\\]" needed_lines "${dyn}")
set(needed "")
foreach(line ${needed_lines})
  string(REGEX REPLACE ".*\\[([^]]*)\\]" "\\1" lib "${line}")
  list(APPEND needed ${lib})
endforeach()
if(NOT needed)
  message(FATAL_ERROR "no NEEDED entries read from ${READELF} -d qnas_formats_consumer:\n${dyn}")
endif()
foreach(lib ${needed})
  string(TOLOWER "${lib}" lib_lower)
  if(lib_lower MATCHES "${heavy_regex}")
    message(FATAL_ERROR "the qnas::formats consumer needs ${lib} at run time (NEEDED: ${needed})")
  endif()
endforeach()
message(STATUS "install consumers built and ran against ${WORK_DIR}/prefix; the formats-only one "
               "needs only: ${needed}")
