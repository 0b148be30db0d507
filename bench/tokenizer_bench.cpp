// Tokenizer encoding throughput, one thread: MB/s and tokens/s on a generated mixed-language corpus
// (English prose, code, JSON, Chinese, Japanese, Korean, Russian, Arabic, numbers, emoji), and the
// same corpus through Hugging Face's Rust tokenizer (npm `tokenizers`) in the same run when
// --npm-dir names a folder holding node_modules/tokenizers (bench/tokenizer_bench.sh installs it).
//
//   tokenizer_bench [--model DIR] [--mb N] [--npm-dir DIR] [--smoke]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "machine_limits.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return size_t(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

std::vector<std::string> split_words(const char* text) {
  std::vector<std::string> out;
  std::string w;
  for (const char* p = text;; ++p) {
    if (*p == ' ' || *p == 0) {
      if (!w.empty()) out.push_back(w);
      w.clear();
      if (!*p) break;
    } else {
      w += *p;
    }
  }
  return out;
}

std::vector<std::string> split_chars(const char* utf8) {
  std::vector<std::string> out;
  for (const char* p = utf8; *p;) {
    int n = (uint8_t(*p) < 0x80) ? 1 : (uint8_t(*p) < 0xE0) ? 2 : (uint8_t(*p) < 0xF0) ? 3 : 4;
    out.emplace_back(p, n);
    p += n;
  }
  return out;
}

// A deterministic corpus of documents of a few kilobytes each, `bytes` in total.
std::vector<std::string> make_corpus(size_t bytes) {
  Rng rng{42};
  auto english = split_words(
      "the of and to a in is that for it as was with be by on not he I this are or his from at which but have an "
      "they you were her she there been one all we their has would when if so what no more out up about into them "
      "can said time only could new some these two may first then do any like my now over such our man me even most "
      "made after also did many before must through back years where much your way well down should because each "
      "just those people how too little state good very make world still own see men work long get here between "
      "both life being under never day same another know while last might us great old year off come since against "
      "go came right used take three model token cache request server latency throughput memory bandwidth expert "
      "attention layer prefill decode batch sequence kernel tensor matrix gradient inference deployment cluster");
  auto code_words = split_words(
      "int main return if else for while std::vector<int> auto const void struct class public private template "
      "size_t nullptr true false def self import from as lambda async await function let var => == != <= >= && || "
      "{ } ( ) [ ] ; , . :: -> += -= ++ -- 0 1 2 42 0x1F i j k n buf len ptr data result value key config args");
  auto chinese = split_chars(
      "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好"
      "都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法"
      "此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再"
      "平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原");
  auto japanese = split_chars("こんにちはありがとうございますわたしはにほんごをべんきょうしていますカタカナコンピュータープログラム東京大学研究");
  auto korean = split_words("안녕하세요 감사합니다 저는 한국어를 공부하고 있습니다 컴퓨터 프로그램 모델 서버 데이터 오늘 날씨가 좋네요");
  auto russian = split_words("привет мир это пример текста на русском языке модель сервер данные память скорость обработки запрос ответ");
  auto arabic = split_words("مرحبا بالعالم هذا نص عربي لاختبار المقسم اللغة العربية جميلة شكرا على المساعدة البيانات الخادم");
  std::vector<std::string> emoji = {"😀", "👍🏽", "🇯🇵", "👨‍👩‍👧", "🔥", "✅", "❤️", "🚀"};

  std::vector<std::string> docs;
  size_t total = 0;
  while (total < bytes) {
    std::string d;
    size_t target = 2000 + rng.below(14000);
    while (d.size() < target) {
      switch (rng.below(20)) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: {  // English paragraph
          size_t n = 20 + rng.below(80);
          for (size_t i = 0; i < n; ++i) {
            std::string w = rng.pick(english);
            if (rng.below(25) == 0) {  // a rare word the cache has not seen
              w.clear();
              for (size_t k = 3 + rng.below(8); k > 0; --k) w += char('a' + rng.below(26));
            }
            if (i == 0 || rng.below(15) == 0) w[0] = char(std::toupper(w[0]));
            d += w;
            d += rng.below(12) == 0 ? ", " : " ";
          }
          d += rng.below(3) ? ".\n\n" : ". ";
          break;
        }
        case 8: case 9: case 10: {  // code
          size_t lines = 3 + rng.below(12);
          for (size_t l = 0; l < lines; ++l) {
            d.append(2 * rng.below(4), ' ');
            for (size_t i = 2 + rng.below(8); i > 0; --i) d += rng.pick(code_words) + (rng.below(3) ? " " : "");
            d += "\n";
          }
          break;
        }
        case 11: case 12: {  // Chinese
          for (size_t i = 20 + rng.below(120); i > 0; --i) d += rng.pick(chinese);
          d += rng.below(2) ? "。" : "，";
          break;
        }
        case 13: for (size_t i = 10 + rng.below(60); i > 0; --i) d += rng.pick(japanese); d += "。"; break;
        case 14: for (size_t i = 5 + rng.below(30); i > 0; --i) d += rng.pick(russian) + " "; d += "\n"; break;
        case 15: for (size_t i = 5 + rng.below(20); i > 0; --i) d += rng.pick(korean) + " "; break;
        case 16: for (size_t i = 5 + rng.below(20); i > 0; --i) d += rng.pick(arabic) + " "; break;
        case 17: {  // JSON with numbers
          d += "{\"id\": " + std::to_string(rng.below(1000000)) + ", \"score\": " + std::to_string(rng.below(10000)) +
               "." + std::to_string(rng.below(100)) + ", \"tags\": [\"" + rng.pick(english) + "\", \"" +
               rng.pick(english) + "\"], \"ok\": " + (rng.below(2) ? "true" : "false") + "}\n";
          break;
        }
        case 18: d += std::to_string(rng.below(100000)) + " " + std::to_string(rng.next() % 1000000000) + "\t"; break;
        default: d += rng.pick(emoji) + " "; break;
      }
    }
    total += d.size();
    docs.push_back(std::move(d));
  }
  return docs;
}

std::string default_model_dir() {
  std::string here = __FILE__;  // .../bench/tokenizer_bench.cpp
  std::string root = here.substr(0, here.rfind('/'));
  root = root.substr(0, root.rfind('/'));
  return root + "/assets/tokenizer/deepseek-v3";
}

struct Result {
  double seconds = 0;
  size_t tokens = 0;
};

int run(int argc, char** argv) {
  using namespace dsinfer;
  bool smoke = bench::smoke_mode(argc, argv);
  std::string model = default_model_dir(), npm_dir;
  double mb = 12;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--model") model = value();
    else if (a == "--npm-dir") npm_dir = value();
    else if (a == "--mb") mb = std::atof(value().c_str());
    else if (a != "--smoke") fail("unknown flag ", a, " (flags: --model DIR --mb N --npm-dir DIR --smoke)");
  }
  if (smoke) mb = 0.5;

  bench::MachineLimits limits = bench::measure_machine_limits(smoke ? (size_t(32) << 20) : (size_t(256) << 20), 3);
  std::printf("%s\n", bench::describe(limits).c_str());

  double t0 = now_seconds();
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_dir(model);
  std::printf("load %s: %.2f s, %zu ids\n", model.c_str(), now_seconds() - t0, tok.vocab_size());

  std::vector<std::string> docs = make_corpus(size_t(mb * 1e6));
  size_t bytes = 0;
  for (auto& d : docs) bytes += d.size();
  std::printf("corpus: %zu documents, %.2f MB (generated, mixed languages and code)\n", docs.size(), bytes / 1e6);

  // Best of a few passes after a warm-up one, the same protocol as the Rust run below.
  std::vector<int32_t> ids;
  Result best{1e30, 0};
  int passes = smoke ? 2 : 4;
  for (int pass = 0; pass < passes; ++pass) {
    size_t tokens = 0;
    double s = now_seconds();
    for (const std::string& d : docs) {
      ids.clear();
      tok.encode(d, ids);
      tokens += ids.size();
    }
    double dt = now_seconds() - s;
    if (pass > 0 && dt < best.seconds) best = {dt, tokens};
  }
  double mbps = bytes / best.seconds / 1e6, tps = best.tokens / best.seconds;
  std::printf("dsinfer encode (1 thread): %.2f MB/s, %.0f tokens/s, %zu tokens, %.3f s\n", mbps, tps, best.tokens,
              best.seconds);

  if (npm_dir.empty()) {
    std::printf("(no --npm-dir: Hugging Face tokenizers not run; bench/tokenizer_bench.sh runs both)\n");
    return 0;
  }
  std::string corpus_path = npm_dir + "/tokenizer_bench_corpus.jsonl";
  {
    std::ofstream out(corpus_path, std::ios::binary);
    for (const std::string& d : docs) out << nlohmann::json(d).dump() << "\n";
    if (!out) fail("cannot write ", corpus_path);
  }
  std::string here = __FILE__;
  std::string script = here.substr(0, here.rfind('/')) + "/tokenizer_bench.js";
  std::string cmd = "DSINFER_NPM_DIR='" + npm_dir + "' RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false node '" + script +
                    "' '" + model + "/tokenizer.json' '" + corpus_path + "' " + std::to_string(passes);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) fail("cannot run node");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  if (pclose(p) != 0) fail("the Hugging Face run failed: ", out);
  auto j = nlohmann::json::parse(out);
  double rust_s = j["seconds"].get<double>();
  size_t rust_tokens = j["tokens"].get<size_t>();
  std::printf("hf tokenizers %s encode (Rust via node, 1 thread, %s): %.2f MB/s, %.0f tokens/s, %zu tokens, %.3f s\n",
              j["version"].get<std::string>().c_str(), j["method"].get<std::string>().c_str(), bytes / rust_s / 1e6,
              rust_tokens / rust_s, rust_tokens, rust_s);
  if (rust_tokens != best.tokens) fail("token counts differ: dsinfer ", best.tokens, ", Hugging Face ", rust_tokens);
  std::printf("ratio dsinfer / Rust: %.2fx\n", rust_s / best.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
}
