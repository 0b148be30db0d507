#include "tokenizer/bpe.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

// Words longer than this are merged every time rather than cached (Hugging Face's limit too):
// long words are rare and would crowd out the common ones.
constexpr size_t kMaxCachedWord = 256;
constexpr size_t kCacheSlots = size_t(1) << 17;

// word bytes -> ids, for one model on one thread. When half full it starts over: the hot words
// of the current text come back within a few hundred words.
class WordCache {
 public:
  WordCache() : slots_(kCacheSlots) {}

  bool find(std::string_view word, std::vector<int32_t>& out) const {
    uint64_t h = hash_bytes(word.data(), word.size()) | 1;
    for (size_t i = h & (kCacheSlots - 1);; i = (i + 1) & (kCacheSlots - 1)) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return false;
      if (s.hash == h && s.key_len == word.size() && !std::memcmp(keys_.data() + s.key_off, word.data(), word.size())) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.ids_len);
        return true;
      }
    }
  }

  void insert(std::string_view word, const int32_t* ids, size_t n) {
    if (count_ * 2 >= kCacheSlots || keys_.size() > (size_t(64) << 20)) clear();
    uint64_t h = hash_bytes(word.data(), word.size()) | 1;
    for (size_t i = h & (kCacheSlots - 1);; i = (i + 1) & (kCacheSlots - 1)) {
      Slot& s = slots_[i];
      if (s.hash != 0) continue;
      s = Slot{h, uint32_t(keys_.size()), uint32_t(word.size()), uint32_t(ids_.size()), uint32_t(n)};
      keys_.append(word);
      ids_.insert(ids_.end(), ids, ids + n);
      ++count_;
      return;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0 marks an empty slot; stored hashes have the low bit set
    uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }
};

WordCache& cache_for(uint64_t instance) {
  // A model may be destroyed and another built at the same address, so caches are keyed by a
  // never-reused instance number. The last model used is remembered to skip the map lookup.
  thread_local std::unordered_map<uint64_t, std::unique_ptr<WordCache>> caches;
  thread_local uint64_t last_instance = 0;
  thread_local WordCache* last = nullptr;
  if (instance == last_instance && last) return *last;
  auto it = caches.find(instance);
  if (it == caches.end()) {
    if (caches.size() >= 8) caches.clear();  // models come and go in tests; keep memory bounded
    it = caches.emplace(instance, std::make_unique<WordCache>()).first;
  }
  last_instance = instance;
  return *(last = it->second.get());
}

std::atomic<uint64_t> g_next_instance{1};

std::pair<std::string, std::string> parse_merge(const nlohmann::json& m, size_t rank) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t space = s.find(' ');
    // Hugging Face splits "a b" on its one space; a merge with more or fewer parts is invalid.
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      fail("tokenizer.json: merge #", rank, " '", s, "' is not two tokens separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  fail("tokenizer.json: merge #", rank, " is neither \"a b\" nor [\"a\", \"b\"]: ", m.dump());
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, bool byte_level) : byte_level_(byte_level) {
  instance_ = g_next_instance.fetch_add(1);
  auto opt_string = [&](const char* key) -> std::string {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return "";
    if (!it->is_string()) fail("tokenizer.json: model.", key, " must be a string or null");
    return it->get<std::string>();
  };
  auto opt_bool = [&](const char* key) {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return false;
    if (!it->is_boolean()) fail("tokenizer.json: model.", key, " must be true or false");
    return it->get<bool>();
  };
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null() && it->get<double>() != 0.0)
    fail("tokenizer.json: BPE dropout is not supported (it makes encoding random); set it to null");
  byte_fallback_ = opt_bool("byte_fallback");
  ignore_merges_ = opt_bool("ignore_merges");
  fuse_unk_ = opt_bool("fuse_unk");
  prefix_ = opt_string("continuing_subword_prefix");
  suffix_ = opt_string("end_of_word_suffix");
  prefix_unit_ = prefix_;
  suffix_unit_ = suffix_;
  if (byte_level_) {
    // Words arrive as raw bytes, so the affixes must be raw bytes too.
    auto p = byte_level_to_bytes(prefix_), q = byte_level_to_bytes(suffix_);
    if (!p || !q) fail("tokenizer.json: BPE affixes must be written in the byte-level alphabet");
    prefix_unit_ = *p;
    suffix_unit_ = *q;
  }

  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) fail("tokenizer.json: model.vocab must be an object");
  vocab_.reserve(vocab_it->size());
  units_.reserve(vocab_it->size());
  for (auto& [token, id_json] : vocab_it->items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() > INT32_MAX)
      fail("tokenizer.json: vocab entry '", token, "' has id ", id_json.dump(), ", not a non-negative integer");
    int32_t id = id_json.get<int32_t>();
    if (size_t(id) >= id_to_token_.size()) id_to_token_.resize(size_t(id) + 1);
    id_to_token_[id] = token;
    vocab_.insert(token, id);
    if (!byte_level_) {
      units_.insert(token, id);
    } else if (auto bytes = byte_level_to_bytes(token)) {
      units_.insert(*bytes, id);
    }
  }
  std::string unk = opt_string("unk_token");
  if (!unk.empty()) {
    unk_id_ = vocab_.find(unk);
    if (unk_id_ < 0) fail("tokenizer.json: model.unk_token '", unk, "' is not in the vocabulary");
  }
  for (int b = 0; b < 256; ++b) {
    char c = char(b);
    byte_id_[b] = byte_level_ ? units_.find(std::string_view(&c, 1)) : -1;
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_fallback_id_[b] = vocab_.find(name);
  }

  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) fail("tokenizer.json: model.merges must be an array");
  merges_.reserve(merges_it->size());
  size_t rank = 0;
  for (const auto& m : *merges_it) {
    auto [a, b] = parse_merge(m, rank);
    int32_t ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia < 0 || ib < 0)
      fail("tokenizer.json: merge #", rank, " uses '", ia < 0 ? a : b, "', which is not in the vocabulary");
    if (!prefix_.empty() && b.compare(0, prefix_.size(), prefix_) == 0) b = b.substr(prefix_.size());
    int32_t merged = vocab_.find(a + b);
    if (merged < 0)
      fail("tokenizer.json: merge #", rank, " makes '", a + b, "', which is not in the vocabulary");
    merges_.insert_or_assign(ia, ib, {int32_t(rank), merged});
    ++rank;
  }
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string empty;
  return id >= 0 && size_t(id) < id_to_token_.size() ? id_to_token_[id] : empty;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const {
  int32_t pending_unk = -1;  // fuse_unk joins consecutive unknown characters into one unk
  std::string unit;
  size_t i = 0;
  while (i < word.size()) {
    size_t len = byte_level_ ? 1 : std::max<size_t>(1, utf8_lead_length(uint8_t(word[i])));
    len = std::min(len, word.size() - i);
    std::string_view piece = word.substr(i, len);
    int32_t id;
    if (byte_level_ && prefix_unit_.empty() && suffix_unit_.empty()) {
      id = byte_id_[uint8_t(word[i])];
    } else {
      std::string_view key = piece;
      bool first = i == 0, last = i + len == word.size();
      if ((!first && !prefix_unit_.empty()) || (last && !suffix_unit_.empty())) {
        unit.clear();
        if (!first) unit += prefix_unit_;
        unit.append(piece);
        if (last) unit += suffix_unit_;
        key = unit;
      }
      id = units_.find(key);
    }
    i += len;
    if (id >= 0) {
      if (pending_unk >= 0) symbols.push_back(pending_unk), pending_unk = -1;
      symbols.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : piece) all &= byte_fallback_id_[uint8_t(c)] >= 0;
      if (all) {
        if (pending_unk >= 0) symbols.push_back(pending_unk), pending_unk = -1;
        for (char c : piece) symbols.push_back(byte_fallback_id_[uint8_t(c)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) symbols.push_back(pending_unk);
      pending_unk = unk_id_;
    }
    // Without unk_token or byte fallback Hugging Face drops the character; so do we.
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> sym;
  thread_local std::vector<PairMap::Merge> pair;
  sym.clear();
  initial_symbols(word, sym);
  size_t n = sym.size();
  if (n >= 2 && n <= 256) {
    // Short words: keep the rank of every adjacent pair and repeatedly merge the lowest
    // (leftmost on ties). Scanning a few dozen ints beats a heap at these sizes.
    pair.resize(n);
    for (size_t i = 0; i + 1 < n; ++i) pair[i] = merges_.find(sym[i], sym[i + 1]);
    while (n > 1) {
      size_t best = n;
      int32_t best_rank = INT32_MAX;
      for (size_t i = 0; i + 1 < n; ++i)
        if (pair[i].rank >= 0 && pair[i].rank < best_rank) best_rank = pair[i].rank, best = i;
      if (best == n) break;
      sym[best] = pair[best].new_id;
      std::copy(sym.begin() + best + 2, sym.begin() + n, sym.begin() + best + 1);
      std::copy(pair.begin() + best + 2, pair.begin() + n, pair.begin() + best + 1);
      --n;
      if (best > 0) pair[best - 1] = merges_.find(sym[best - 1], sym[best]);
      if (best + 1 < n) pair[best] = merges_.find(sym[best], sym[best + 1]);
      else pair[best] = {};
    }
    out.insert(out.end(), sym.begin(), sym.begin() + n);
    return;
  }
  if (n < 2) {
    out.insert(out.end(), sym.begin(), sym.begin() + n);
    return;
  }
  // Long words: a doubly linked list of symbols and a min-heap of candidate merges ordered by
  // (rank, position); stale candidates are recognised and dropped when popped.
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) prev[i] = int32_t(i) - 1, next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    PairMap::Merge m = merges_.find(sym[pos], sym[next[pos]]);
    if (m.rank >= 0) heap.push({m.rank, pos, m.new_id});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    int32_t right = next[c.pos];
    PairMap::Merge m = merges_.find(sym[c.pos], sym[right]);
    if (m.rank != c.rank || m.new_id != c.new_id) continue;  // the pair changed since it was queued
    sym[c.pos] = c.new_id;
    alive[right] = false;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    int32_t id = units_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = cache_for(instance_);
  if (cache.find(word, out)) return;
  size_t before = out.size();
  merge_word(word, out);
  cache.insert(word, out.data() + before, out.size() - before);
}

}  // namespace dsinfer::tokenizer
