# The trained demo model (assets/demo-model, tools/train_demo/): dsinfer's logits and greedy tokens
# against the model's own PyTorch trainer, BF16 and FP8 checkpoints (docs/demo_model.md).
add_test(NAME demo_model_vs_trainer
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_demo_model.py --dsinfer ${DSINFER_BIN}
                 --model ${PROJECT_SOURCE_DIR}/assets/demo-model --text ${PROJECT_SOURCE_DIR}/tools/train_demo/heldout_sample.txt)
set_tests_properties(demo_model_vs_trainer PROPERTIES LABELS "demo;e2e" TIMEOUT 300)

# Speculative decoding's benchmark in its smoke form (scripts/mtp_bench.py --quick: two prompts,
# a small batch): the same tokens with drafts, acceptance and cost reported (figures:
# docs/benchmarks.md).
add_test(NAME demo_mtp_bench_smoke
         COMMAND ${DSINFER_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/mtp_bench.py --quick --dsinfer ${DSINFER_BIN}
                 --model ${PROJECT_SOURCE_DIR}/assets/demo-model --work ${DSINFER_TESTDATA}/mtp_bench)
set_tests_properties(demo_mtp_bench_smoke PROPERTIES LABELS "demo;bench" TIMEOUT 300)

# The demo model widened by zero MLP units (tools/train_demo/widen.py) is the same function:
# bit-identical logits and the same drafts. The speculative-decoding figures measured where
# weights stream from DRAM use such a model (docs/benchmarks.md).
add_test(NAME demo_widened_model_same_function
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_widened_model.py --dsinfer ${DSINFER_BIN}
                 --model ${PROJECT_SOURCE_DIR}/assets/demo-model --work ${DSINFER_TESTDATA}/widened_model)
set_tests_properties(demo_widened_model_same_function PROPERTIES LABELS "demo;e2e" TIMEOUT 120)
