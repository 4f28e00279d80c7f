# The ONNX importer's fuzz target (fuzz_onnx_import.cpp), declared only where the optional
# component qnas::onnx exists (Debian: libonnx-dev libprotobuf-dev); included by fuzz/CMakeLists.txt.
if(TARGET qnas::onnx)
  qnas_add_fuzz_target(NAME fuzz_onnx_import SOURCE fuzz_onnx_import.cpp MAX_LEN 65536 DICT onnx.dict)
  target_link_libraries(fuzz_onnx_import PRIVATE qnas::onnx)
else()
  message(STATUS "qnas: ONNX not found; fuzz_onnx_import is skipped")
endif()
