# End-to-end tests of `dsinfer serve` on 127.0.0.1 with the official OpenAI Node SDK (npm
# `openai`, installed into the build tree at test time, never committed). run.sh makes a tiny-v3
# model, installs the SDK and runs openai_sdk_test.mjs, which starts and stops its own servers.
add_test(NAME e2e_serve_openai
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh ${DSINFER_BIN} ${DSINFER_TESTDATA}/e2e)
set_tests_properties(e2e_serve_openai PROPERTIES LABELS e2e TIMEOUT 400)
# The same tests against `dsinfer router` + one prefill + one decode instance (docs/serving.md).
add_test(NAME e2e_router_openai
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh ${DSINFER_BIN} ${DSINFER_TESTDATA}/e2e router)
set_tests_properties(e2e_router_openai PROPERTIES LABELS "e2e;router" TIMEOUT 400 RUN_SERIAL TRUE)
