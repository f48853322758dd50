#include "engine.h"

#include <uv.h>

#include <cerrno>
#include <deque>
#include <unordered_set>

#include "ring.h"

namespace untorn {

namespace {

constexpr unsigned kRingEntries = 256;

// One promise: its entries, their results, and what they keep alive.
struct Request {
  napi_deferred deferred;
  std::vector<RingEntry> entries;  // the trailing fdatasync, if any, is the last
  std::vector<int64_t> results;
  std::vector<napi_ref> keep;
  size_t writes_left;  // entries before the fdatasync without a CQE yet
  bool datasync_after;
  bool as_array;
};

// What an SQE's user_data points at.
struct Slot {
  Request* request;
  size_t index;
};

}  // namespace

class RingEngine {
 public:
  RingEngine(napi_env env, uv_loop_t* loop) : env_(env), loop_(loop) {}

  int Start();
  napi_value Submit(std::vector<RingEntry> entries, std::vector<napi_value> keep, bool datasync_after, bool as_array);
  unsigned setup_flags() const { return ring_.setup_flags(); }
  unsigned TakePeak() {
    unsigned peak = peak_;
    peak_ = in_flight_;
    return peak;
  }
  int open_error() const { return open_error_; }
  void set_open_error(int e) { open_error_ = e; }

  static void Cleanup(napi_async_cleanup_hook_handle handle, void* arg);

 private:
  void Queue(Request* request, size_t index) { waiting_.push_back(Slot{request, index}); }
  // Moves waiting entries into the SQ (as far as the CQ has room for their
  // completions), enters the ring, and settles what completed.
  void Pump();
  // Takes every CQE; returns the requests it finished.
  void Reap(std::vector<Request*>* finished);
  void Complete(const Slot& slot, int64_t res, std::vector<Request*>* finished);
  void Settle(const std::vector<Request*>& finished);
  void Release(Request* request);
  void UpdateActivity();
  void Shutdown();
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnPrepare(uv_prepare_t* handle);
  static void OnClosed(uv_handle_t* handle);
  void Finish();

  napi_env env_;
  uv_loop_t* loop_;
  Ring ring_;
  int open_error_ = 0;
  uv_poll_t poll_{};
  uv_prepare_t prepare_{};
  int handles_open_ = 0;
  napi_ref resource_ = nullptr;
  napi_async_context async_context_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_ = nullptr;
  std::deque<Slot> waiting_;
  std::deque<Slot> slots_;  // stable addresses for user_data; recycled through free_slots_
  std::vector<Slot*> free_slots_;
  std::unordered_set<Request*> live_;
  unsigned in_flight_ = 0;
  unsigned peak_ = 0;
  bool shutting_down_ = false;
};

int RingEngine::Start() {
  int r = ring_.Open(kRingEntries);
  if (r < 0) return r;
  r = uv_poll_init(loop_, &poll_, ring_.event_fd());
  if (r < 0) return r;
  handles_open_++;
  poll_.data = this;
  uv_prepare_init(loop_, &prepare_);
  handles_open_++;
  prepare_.data = this;
  // Neither handle keeps the process alive by itself: UpdateActivity refs
  // the poll while requests are outstanding.
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  uv_poll_start(&poll_, UV_READABLE, OnPoll);

  napi_value resource, name;
  napi_create_object(env_, &resource);
  napi_create_reference(env_, resource, 1, &resource_);
  napi_create_string_utf8(env_, "untorn:io_uring", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env_, resource, name, &async_context_);
  return 0;
}

napi_value RingEngine::Submit(std::vector<RingEntry> entries, std::vector<napi_value> keep, bool datasync_after,
                              bool as_array) {
  napi_value promise;
  auto* request = new Request{};
  napi_create_promise(env_, &request->deferred, &promise);
  request->writes_left = entries.size();
  request->datasync_after = datasync_after && !entries.empty();
  request->as_array = as_array;
  if (request->datasync_after) entries.push_back(RingEntry{RingOp::kFdatasync, entries[0].fd, nullptr, 0, 0, 0});
  request->entries = std::move(entries);
  request->results.assign(request->entries.size(), 0);
  request->keep.reserve(keep.size());
  for (napi_value value : keep) {
    napi_ref ref;
    napi_create_reference(env_, value, 1, &ref);
    request->keep.push_back(ref);
  }
  live_.insert(request);
  if (request->writes_left == 0) {
    Settle({request});
    return promise;
  }
  for (size_t i = 0; i < request->writes_left; i++) Queue(request, i);
  UpdateActivity();
  return promise;
}

void RingEngine::Pump() {
  bool added = false;
  while (!waiting_.empty() && in_flight_ < ring_.cq_entries()) {
    Slot* slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slots_.emplace_back();
      slot = &slots_.back();
    }
    io_uring_sqe* sqe = ring_.NextSqe(reinterpret_cast<uintptr_t>(slot));
    if (sqe == nullptr) {
      free_slots_.push_back(slot);
      break;
    }
    *slot = waiting_.front();
    waiting_.pop_front();
    const RingEntry& e = slot->request->entries[slot->index];
    switch (e.op) {
      case RingOp::kWrite: PrepWrite(sqe, e.fd, e.data, e.length, e.position, e.rwflags); break;
      case RingOp::kRead: PrepRead(sqe, e.fd, e.data, e.length, e.position); break;
      case RingOp::kFsync: PrepFsync(sqe, e.fd, false); break;
      case RingOp::kFdatasync: PrepFsync(sqe, e.fd, true); break;
    }
    in_flight_++;
    added = true;
  }
  if (in_flight_ > peak_) peak_ = in_flight_;
  // EAGAIN/EBUSY (the kernel short of memory or CQ room) leave the SQEs in
  // the ring; the next pump sends them.
  if (added || in_flight_ > 0) ring_.Enter(0);
  std::vector<Request*> finished;
  Reap(&finished);
  Settle(finished);
}

void RingEngine::Reap(std::vector<Request*>* finished) {
  ring_.Reap([&](uint64_t user_data, int32_t res) {
    Slot* slot = reinterpret_cast<Slot*>(static_cast<uintptr_t>(user_data));
    Slot copy = *slot;
    free_slots_.push_back(slot);
    in_flight_--;
    Complete(copy, res, finished);
  });
}

void RingEngine::Complete(const Slot& slot, int64_t res, std::vector<Request*>* finished) {
  Request* r = slot.request;
  r->results[slot.index] = res;
  if (slot.index == r->entries.size() - 1 && r->datasync_after && r->writes_left == 0) {
    finished->push_back(r);  // the trailing fdatasync
    return;
  }
  if (--r->writes_left > 0) return;
  bool all_ok = true;
  for (size_t i = 0; i + (r->datasync_after ? 1 : 0) < r->entries.size(); i++) all_ok = all_ok && r->results[i] >= 0;
  if (r->datasync_after && all_ok && !shutting_down_) {
    Queue(r, r->entries.size() - 1);
  } else {
    // A failed batch gets no durability point: its results say what failed.
    if (r->datasync_after) r->entries.pop_back(), r->results.pop_back();
    finished->push_back(r);
  }
}

void RingEngine::Settle(const std::vector<Request*>& finished) {
  if (finished.empty() || shutting_down_) {
    UpdateActivity();
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env_, &scope);
  napi_value resource;
  napi_get_reference_value(env_, resource_, &resource);
  // One callback scope for the whole wakeup: the promises' reactions (and
  // any submissions they make) run when it closes, all together.
  napi_callback_scope callback_scope;
  napi_open_callback_scope(env_, resource, async_context_, &callback_scope);
  for (Request* r : finished) {
    napi_value value;
    if (r->as_array || r->results.size() != 1) {
      napi_create_array_with_length(env_, r->results.size(), &value);
      for (size_t i = 0; i < r->results.size(); i++) {
        napi_value n;
        napi_create_double(env_, static_cast<double>(r->results[i]), &n);
        napi_set_element(env_, value, static_cast<uint32_t>(i), n);
      }
    } else {
      napi_create_double(env_, static_cast<double>(r->results[0]), &value);
    }
    napi_resolve_deferred(env_, r->deferred, value);
    Release(r);
  }
  UpdateActivity();
  napi_close_callback_scope(env_, callback_scope);
  bool pending = false;
  napi_is_exception_pending(env_, &pending);
  if (pending) {
    napi_value error;
    napi_get_and_clear_last_exception(env_, &error);
    napi_fatal_exception(env_, error);
  }
  napi_close_handle_scope(env_, scope);
}

void RingEngine::Release(Request* r) {
  for (napi_ref ref : r->keep) napi_delete_reference(env_, ref);
  live_.erase(r);
  delete r;
}

void RingEngine::UpdateActivity() {
  if (shutting_down_) return;
  // Outstanding work keeps the process alive; an idle ring never does.
  if (live_.empty())
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  else
    uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
  if (waiting_.empty())
    uv_prepare_stop(&prepare_);
  else
    uv_prepare_start(&prepare_, OnPrepare);
}

void RingEngine::OnPoll(uv_poll_t* handle, int status, int) {
  auto* self = static_cast<RingEngine*>(handle->data);
  if (status < 0) return;
  self->ring_.DrainEventFd();
  // With IORING_SETUP_DEFER_TASKRUN the kernel also signals the eventfd for
  // task work it queued to this thread when nothing is in flight here: the
  // free of a request an io-wq worker finished (an fdatasync, say) after its
  // completion was reaped. That request holds its file until the work runs,
  // so a file closed here stayed open in the kernel (umount: "target is
  // busy", seen in the hardware lab) until the next submission. Entering the
  // ring runs the work.
  if (self->in_flight_ == 0 && !self->shutting_down_) self->ring_.Enter(0);
  self->Pump();
}

void RingEngine::OnPrepare(uv_prepare_t* handle) { static_cast<RingEngine*>(handle->data)->Pump(); }

// Environment teardown (process exit, a worker ending, possibly mid-batch):
// nothing new is submitted, what is in flight is waited for, since the kernel
// may still be reading or writing those buffers, and only then are the
// buffers let go and the ring unmapped.
void RingEngine::Cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* self = static_cast<RingEngine*>(arg);
  self->cleanup_ = handle;
  self->Shutdown();
}

void RingEngine::Shutdown() {
  shutting_down_ = true;
  waiting_.clear();
  if (handles_open_ > 0) {
    uv_prepare_stop(&prepare_);
    uv_poll_stop(&poll_);
  }
  std::vector<Request*> ignored;
  while (in_flight_ > 0) {
    int r = ring_.Enter(1);
    if (r < 0 && r != -EAGAIN && r != -EBUSY) break;
    Reap(&ignored);
  }
  for (Request* r : std::vector<Request*>(live_.begin(), live_.end())) Release(r);
  if (resource_ != nullptr) {
    napi_async_destroy(env_, async_context_);
    napi_delete_reference(env_, resource_);
  }
  if (handles_open_ == 0) {
    Finish();
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), OnClosed);
}

void RingEngine::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<RingEngine*>(handle->data);
  if (--self->handles_open_ == 0) self->Finish();
}

void RingEngine::Finish() {
  ring_.Close();
  napi_remove_async_cleanup_hook(cleanup_);
  delete this;
}

RingEngine* RingEngineFor(napi_env env, int* error) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  auto* engine = static_cast<RingEngine*>(data);
  if (engine == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      *error = -ENOSYS;
      return nullptr;
    }
    engine = new RingEngine(env, loop);
    engine->set_open_error(engine->Start());
    // The engine lives until the environment's teardown, failed or not.
    napi_set_instance_data(env, engine, nullptr, nullptr);
    napi_add_async_cleanup_hook(env, RingEngine::Cleanup, engine, nullptr);
  }
  *error = engine->open_error();
  return *error < 0 ? nullptr : engine;
}

unsigned RingSetupFlags(const RingEngine* engine) { return engine->setup_flags(); }

unsigned RingTakePeak(RingEngine* engine) { return engine->TakePeak(); }

napi_value RingSubmit(RingEngine* engine, napi_env env, std::vector<RingEntry> entries, std::vector<napi_value> keep,
                      bool datasync_after, bool as_array) {
  (void)env;
  return engine->Submit(std::move(entries), std::move(keep), datasync_after, as_array);
}

}  // namespace untorn
