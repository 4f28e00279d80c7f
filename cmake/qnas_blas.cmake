# The BLAS behind qnas's GEMMs (include/qnas/nn/blas.hpp), as the imported target qnas::blas.
#
# QNAS_BLAS selects it: OpenBLAS (default; Debian libopenblas-dev) or BLIS (Debian libblis-dev).
# Used by the build tree and by the installed qnasConfig.cmake, so a consumer gets the backend
# the package was configured with (or the one it sets in QNAS_BLAS before find_package).
# BLIS picks its kernels from the CPU's features, so it stays fast on CPUs that OpenBLAS 0.3.21
# does not recognise (its generic "Prescott" fallback is several times slower).
if(TARGET qnas::blas)
  return()
endif()
if(NOT QNAS_BLAS)
  set(QNAS_BLAS OpenBLAS)
endif()

if(QNAS_BLAS STREQUAL "OpenBLAS")
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS REQUIRED)
  add_library(qnas::blas INTERFACE IMPORTED)
  set_target_properties(qnas::blas PROPERTIES INTERFACE_LINK_LIBRARIES BLAS::BLAS)
elseif(QNAS_BLAS STREQUAL "BLIS")
  # Debian installs each threading flavour in its own folder (blis-openmp, blis-pthread, ...).
  set(_qnas_blis_flavours blis-openmp blis-pthread blis-serial blis)
  find_path(QNAS_BLIS_INCLUDE_DIR blis.h PATH_SUFFIXES ${_qnas_blis_flavours})
  find_library(QNAS_BLIS_LIBRARY blis PATH_SUFFIXES ${_qnas_blis_flavours})
  if(NOT QNAS_BLIS_INCLUDE_DIR OR NOT QNAS_BLIS_LIBRARY OR NOT EXISTS "${QNAS_BLIS_INCLUDE_DIR}/cblas.h")
    message(FATAL_ERROR "QNAS_BLAS=BLIS: BLIS with its CBLAS header not found (blis.h and cblas.h: "
                        "'${QNAS_BLIS_INCLUDE_DIR}', libblis: '${QNAS_BLIS_LIBRARY}'); "
                        "on Debian: apt-get install libblis-dev")
  endif()
  find_package(Threads REQUIRED)
  add_library(qnas::blas INTERFACE IMPORTED)
  # BLIS's cblas.h must win over OpenBLAS's /usr/include/cblas.h when both are installed: an imported
  # target's include folder is passed with -isystem, which is searched before /usr/include.
  set_target_properties(qnas::blas PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${QNAS_BLIS_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS QNAS_BLAS_BLIS
    INTERFACE_LINK_LIBRARIES "${QNAS_BLIS_LIBRARY};Threads::Threads")
  message(STATUS "qnas: BLAS backend BLIS (${QNAS_BLIS_LIBRARY})")
else()
  message(FATAL_ERROR "QNAS_BLAS must be OpenBLAS or BLIS, not '${QNAS_BLAS}'")
endif()
