# Script-driven tokenizer tests against the real references, run through the dsinfer binary:
# - exactness: ids and decoded text identical to Hugging Face's Rust tokenizer (npm `tokenizers`
#   0.23.x, installed under the build tree at test time) on the committed corpus, for DeepSeek-V3's
#   tokenizer.json and variants of it that exercise the other components;
# - chat template: conversations rendered identically to the Jinja template (python3-jinja2).
set(tokenizer_model ${DSINFER_ASSETS}/tokenizer/deepseek-v3)
add_test(NAME tokenizer_exactness_vs_hf
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_exactness.py --dsinfer ${DSINFER_BIN}
                 --model ${tokenizer_model} --work ${PROJECT_BINARY_DIR}/tokenizer_npm)
set_tests_properties(tokenizer_exactness_vs_hf PROPERTIES LABELS tokenizer TIMEOUT 900)
add_test(NAME tokenizer_chat_template_vs_jinja
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_chat_template.py --dsinfer ${DSINFER_BIN}
                 --model ${tokenizer_model})
set_tests_properties(tokenizer_chat_template_vs_jinja PROPERTIES LABELS tokenizer TIMEOUT 300)
add_test(NAME tokenizer_cli
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_cli.py --dsinfer ${DSINFER_BIN} --model ${tokenizer_model})
set_tests_properties(tokenizer_cli PROPERTIES LABELS tokenizer TIMEOUT 120)

# The demo model's tokenizer (tools/train_demo/bpe.py; shipped with the model in assets/demo-model):
# npm `tokenizers`, dsinfer and bpe.py's own encoder give the same ids on a held-out sample of the
# demo's corpus and on the tokenizer corpus; BOS per add_bos_token; the chat template renders.
add_test(NAME tokenizer_demo_vs_hf
         COMMAND ${DSINFER_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_demo_tokenizer.py --dsinfer ${DSINFER_BIN}
                 --model ${PROJECT_SOURCE_DIR}/assets/demo-model --work ${PROJECT_BINARY_DIR}/tokenizer_npm_demo)
set_tests_properties(tokenizer_demo_vs_hf PROPERTIES LABELS tokenizer TIMEOUT 300)
