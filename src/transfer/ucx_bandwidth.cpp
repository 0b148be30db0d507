#include "transfer/ucx_bandwidth.h"

#include <sched.h>
#include <ucp/api/ucp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "base/error.h"

namespace dsinfer::transfer {

namespace {

constexpr ucp_tag_t kDataTag = 1, kStopTag = 2;
constexpr ucp_tag_t kAllBits = ~ucp_tag_t(0);
using Clock = std::chrono::steady_clock;

void check_ucx(ucs_status_t s, const char* what) {
  check(s == UCS_OK, "raw UCX: ", what, " failed: ", ucs_status_string(s));
}

// One operation's completion, written by UCX's callback.
struct Slot {
  bool busy = false;
  ucs_status_t status = UCS_OK;
  size_t length = 0;
};

void on_send(void* request, ucs_status_t status, void* user_data) {
  auto* slot = static_cast<Slot*>(user_data);
  slot->status = status;
  slot->busy = false;
  ucp_request_free(request);
}

void on_recv(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user_data) {
  auto* slot = static_cast<Slot*>(user_data);
  slot->status = status;
  slot->length = status == UCS_OK ? info->length : 0;
  slot->busy = false;
  ucp_request_free(request);
}

}  // namespace

struct RawUcxWorker::Impl {
  bool peer_error_mode;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_ep_h ep = nullptr;
  std::vector<uint8_t> address;
  // What UCX writes into until its requests end: kept here, not on a stack a throw unwinds, so
  // the teardown after a failed send or receive cancels requests whose slots still exist.
  std::vector<Slot> slots;
  Slot stop;
  uint64_t count = 0;
  std::vector<uint8_t> data;
  std::vector<std::vector<uint8_t>> buffers;

  // Posts a send or receive with `slot` as its completion; an immediate completion fills it now.
  void track(ucs_status_ptr_t r, Slot& slot, size_t length) {
    slot.busy = true;
    if (r == nullptr) {
      slot.busy = false;
      slot.status = UCS_OK;
      slot.length = length;
    } else if (UCS_PTR_IS_ERR(r)) {
      slot.busy = false;
      slot.status = UCS_PTR_STATUS(r);
    }
  }

  void send(Slot& slot, const void* data, size_t bytes, ucp_tag_t tag) {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    p.cb.send = on_send;
    p.user_data = &slot;
    track(ucp_tag_send_nbx(ep, data, bytes, tag, &p), slot, bytes);
  }

  void* recv(Slot& slot, void* data, size_t bytes, ucp_tag_t tag) {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    p.cb.recv = on_recv;
    p.user_data = &slot;
    ucs_status_ptr_t r = ucp_tag_recv_nbx(worker, data, bytes, tag, kAllBits, &p);
    track(r, slot, bytes);
    return UCS_PTR_IS_PTR(r) ? r : nullptr;
  }

  // Busy-polls, but yields the core when UCX had nothing to do: two processes spinning flat out
  // on a 2-core machine starve the kernel's loopback work and UCX's async thread, and TCP over
  // loopback then ran at a tenth of its speed (0.04 against 0.6 GB/s, one 1 MB message in flight).
  void poll_once() {
    if (ucp_worker_progress(worker) == 0) sched_yield();
  }

  void wait(const Slot& slot) {
    while (slot.busy) poll_once();
  }
};

RawUcxWorker::RawUcxWorker(bool peer_error_mode) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.peer_error_mode = peer_error_mode;
  ucp_config_t* config = nullptr;
  check_ucx(ucp_config_read(nullptr, nullptr, &config), "reading the UCX configuration");
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;  // as UcxAgent, so UCX picks the same transports
  ucs_status_t s = ucp_init(&params, config, &m.context);
  ucp_config_release(config);
  check_ucx(s, "ucp_init");
  ucp_worker_params_t wparams{};
  wparams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wparams.thread_mode = UCS_THREAD_MODE_SINGLE;
  s = ucp_worker_create(m.context, &wparams, &m.worker);
  if (s != UCS_OK) ucp_cleanup(m.context);
  check_ucx(s, "ucp_worker_create");
  ucp_address_t* addr = nullptr;
  size_t len = 0;
  check_ucx(ucp_worker_get_address(m.worker, &addr, &len), "ucp_worker_get_address");
  const auto* bytes = reinterpret_cast<const uint8_t*>(addr);
  m.address.assign(bytes, bytes + len);
  ucp_worker_release_address(m.worker, addr);
}

RawUcxWorker::~RawUcxWorker() {
  Impl& m = *impl_;
  if (m.ep) {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t r = ucp_ep_close_nbx(m.ep, &p);
    if (UCS_PTR_IS_PTR(r)) {
      while (ucp_request_check_status(r) == UCS_INPROGRESS) ucp_worker_progress(m.worker);
      ucp_request_free(r);
    }
  }
  ucp_worker_destroy(m.worker);
  ucp_cleanup(m.context);
}

const std::vector<uint8_t>& RawUcxWorker::address() const { return impl_->address; }

RawTransferResult RawUcxWorker::send_for(const std::vector<uint8_t>& peer, size_t message_bytes, int window,
                                         double seconds) {
  Impl& m = *impl_;
  check(window > 0, "raw UCX: window must be positive");
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  ep.address = reinterpret_cast<const ucp_address_t*>(peer.data());
  ep.err_mode = m.peer_error_mode ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE;
  if (m.peer_error_mode) {
    // A failure must still surface as a failed send, not as UCX's "no error callback" message.
    ep.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.err_handler.cb = [](void*, ucp_ep_h, ucs_status_t) {};
    ep.err_handler.arg = nullptr;
  }
  check_ucx(ucp_ep_create(m.worker, &ep, &m.ep), "ucp_ep_create");

  std::vector<uint8_t>& data = m.data;
  data.assign(message_bytes, 0x5a);
  std::vector<Slot>& slots = m.slots;
  slots.assign(static_cast<size_t>(window), Slot{});
  RawTransferResult result;
  auto collect = [&](Slot& s) {
    check(s.status == UCS_OK, "raw UCX: a send failed: ", ucs_status_string(s.status));
    ++result.messages;
    result.bytes += message_bytes;
  };
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<bool> posted(slots.size(), false);
  while (Clock::now() < end) {
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].busy) continue;
      if (posted[i]) collect(slots[i]);
      m.send(slots[i], data.data(), data.size(), kDataTag);
      posted[i] = true;
    }
    m.poll_once();
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!posted[i]) continue;
    m.wait(slots[i]);
    collect(slots[i]);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();

  m.count = result.messages;
  Slot& stop = m.stop;
  m.send(stop, &m.count, sizeof m.count, kStopTag);
  m.wait(stop);
  check(stop.status == UCS_OK, "raw UCX: the stop message failed: ", ucs_status_string(stop.status));
  return result;
}

RawTransferResult RawUcxWorker::receive_until_stop(size_t message_bytes, int window) {
  Impl& m = *impl_;
  check(window > 0, "raw UCX: window must be positive");
  std::vector<std::vector<uint8_t>>& buffers = m.buffers;
  buffers.assign(static_cast<size_t>(window), std::vector<uint8_t>(message_bytes));
  std::vector<Slot>& slots = m.slots;
  slots.assign(static_cast<size_t>(window), Slot{});
  std::vector<void*> requests(slots.size(), nullptr);
  RawTransferResult result;
  uint64_t& expected = m.count;
  expected = 0;
  Slot& stop = m.stop;
  m.recv(stop, &expected, sizeof expected, kStopTag);
  for (size_t i = 0; i < slots.size(); ++i) requests[i] = m.recv(slots[i], buffers[i].data(), message_bytes, kDataTag);
  for (;;) {
    m.poll_once();
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].busy) continue;
      check(slots[i].status == UCS_OK, "raw UCX: a receive failed: ", ucs_status_string(slots[i].status));
      ++result.messages;
      result.bytes += slots[i].length;
      requests[i] = m.recv(slots[i], buffers[i].data(), message_bytes, kDataTag);
    }
    if (!stop.busy) {
      check(stop.status == UCS_OK, "raw UCX: the stop message failed: ", ucs_status_string(stop.status));
      if (result.messages >= expected) break;
    }
  }
  // The receives posted past the last message: cancelled, and waited for while their slots live.
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].busy) ucp_request_cancel(m.worker, requests[i]);
  for (Slot& s : slots) m.wait(s);
  return result;
}

std::string RawUcxWorker::transports() const {
  if (!impl_->ep) return "";
  char* text = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&text, &size);
  if (!f) return "";
  ucp_ep_print_info(impl_->ep, f);
  std::fclose(f);
  // Lines like "#   lane[0]:  1:tcp/lo.0 md[1] -> ...": keep "tcp/lo" once per transport.
  std::set<std::string> seen;
  std::string out;
  std::istringstream in(std::string(text, size));
  std::free(text);
  for (std::string line; std::getline(in, line);) {
    size_t lane = line.find("lane[");
    if (lane == std::string::npos) continue;
    size_t colon = line.find(':', line.find("]:", lane) + 2);
    if (colon == std::string::npos) continue;
    std::string tl = line.substr(colon + 1, line.find(' ', colon) - colon - 1);
    tl = tl.substr(0, tl.rfind('.'));
    if (seen.insert(tl).second) out += (out.empty() ? "" : ",") + tl;
  }
  return out;
}

}  // namespace dsinfer::transfer
