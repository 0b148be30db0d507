# The independent Python reference (tests/reference/), registered with ctest.
#
# reference_self_test: the reference's own pieces against hand-worked values.
# reference_<model>: `dsinfer logits` against the reference on a fresh `dsinfer make-model`
#   checkpoint (issue 2, item 8): --precision fp32 within 1e-4 relative L2 per position, the
#   default precision within 3e-2 with the same argmax on >= 90% of positions; the prefill path
#   and the decode path (--step-from 5).
add_test(NAME reference_self_test COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/self_test.py)
set_tests_properties(reference_self_test PROPERTIES LABELS reference TIMEOUT 120)

foreach(model tiny-v3 tiny-v3-fp8 tiny-v2lite tiny-mla576)
  string(REPLACE "-fp8" "" preset ${model})
  set(fp8_flag)
  if(NOT model STREQUAL preset)
    set(fp8_flag --fp8)
  endif()
  add_test(NAME reference_${model}
    COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_dsinfer.py
      --dsinfer ${DSINFER_BIN} --preset ${preset} ${fp8_flag}
      --check fp32:1e-4 --check default:3e-2:0.9 --step-from 5
      --workdir ${DSINFER_TESTDATA}/reference/${model} --fresh)
  set_tests_properties(reference_${model} PROPERTIES LABELS reference TIMEOUT 300)
endforeach()

# reference_dump_<model>: DSINFER_DUMP's named intermediates against the reference's, layer by
# layer (src/model/dump.h): where a divergence starts, not only that the logits differ.
foreach(model tiny-v3 tiny-v2lite)
  add_test(NAME reference_dump_${model}
    COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_dump.py --dsinfer ${DSINFER_BIN} --preset ${model}
      --workdir ${DSINFER_TESTDATA}/reference-dump/${model})
  set_tests_properties(reference_dump_${model} PROPERTIES LABELS reference TIMEOUT 300)
endforeach()
