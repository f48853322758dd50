// The N-API binding: argument unpacking and the sync/async plumbing over the
// syscall core. Validation lives in lib/; here only what JS cannot see.
// Every call returns (or resolves to) the core's result: >= 0, or -errno.
#include <napi.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "atomic_io.h"
#include "crc32c.h"
#include "engine.h"

namespace {

using untorn::AtomicStat;

Napi::Value Throw(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// 0 for a type newer than this file (Float16Array): then ask V8 for the length.
size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: return 8;
    default: return 0;
  }
}

// The bytes of a TypedArray, Buffer or DataView, or false when the value is none.
bool ViewBytes(Napi::Value value, void** data, size_t* length) {
  napi_env env = value.Env();
  napi_value buffer;
  size_t offset;
  napi_typedarray_type type;
  size_t count;
  if (napi_get_typedarray_info(env, value, &type, &count, data, &buffer, &offset) == napi_ok) {
    size_t size = ElementSize(type);
    *length = size > 0 ? count * size : value.As<Napi::TypedArray>().ByteLength();
    return true;
  }
  return napi_get_dataview_info(env, value, length, data, &buffer, &offset) == napi_ok;
}

Napi::Object StatToObject(Napi::Env env, const AtomicStat& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("mask", st.mask);
  o.Set("attributes", static_cast<double>(st.attributes));
  o.Set("blksize", st.blksize);
  o.Set("mode", st.mode);
  o.Set("devMajor", st.dev_major);
  o.Set("devMinor", st.dev_minor);
  o.Set("rdevMajor", st.rdev_major);
  o.Set("rdevMinor", st.rdev_minor);
  o.Set("dioMemAlign", st.dio_mem_align);
  o.Set("dioOffsetAlign", st.dio_offset_align);
  o.Set("unitMin", st.atomic_write_unit_min);
  o.Set("unitMax", st.atomic_write_unit_max);
  o.Set("segmentsMax", st.atomic_write_segments_max);
  o.Set("unitMaxOpt", st.atomic_write_unit_max_opt);
  return o;
}

// Each operation is one struct: Run() does the syscall (on any thread),
// Result() turns its outcome into a JS value (on the JS thread).
struct StatOp {
  std::string path;
  bool by_path;
  int fd;
  AtomicStat st{};
  int rc = 0;
  void Run() { rc = untorn::StatAtomic(by_path ? path.c_str() : nullptr, fd, &st); }
  Napi::Value Result(Napi::Env env) const {
    return rc < 0 ? Napi::Value(Napi::Number::New(env, rc)) : Napi::Value(StatToObject(env, st));
  }
};

struct OpenOp {
  std::string path;
  int flags, mode;
  int rc = 0;
  void Run() { rc = untorn::OpenDirect(path.c_str(), flags, mode); }
  Napi::Value Result(Napi::Env env) const { return Napi::Number::New(env, rc); }
};

struct WriteOp {
  int fd;
  void* data;
  size_t length;
  int64_t position;
  int rwflags;
  int64_t rc = 0;
  void Run() { rc = untorn::PWrite(fd, data, length, position, rwflags); }
  Napi::Value Result(Napi::Env env) const { return Napi::Number::New(env, static_cast<double>(rc)); }
};

struct ReadOp {
  int fd;
  void* data;
  size_t length;
  int64_t position;
  int64_t rc = 0;
  void Run() { rc = untorn::PRead(fd, data, length, position); }
  Napi::Value Result(Napi::Env env) const { return Napi::Number::New(env, static_cast<double>(rc)); }
};

struct FdOp {
  int (*call)(int);
  int fd;
  int rc = 0;
  void Run() { rc = call(fd); }
  Napi::Value Result(Napi::Env env) const { return Napi::Number::New(env, rc); }
};

// How many pool threads run an untorn syscall right now, and the most since
// the last poolPeak(): the depth the pool really reached (one pool serves
// every thread of the process).
std::atomic<unsigned> pool_active{0};
std::atomic<unsigned> pool_peak{0};

// Runs an operation on the libuv pool and settles a promise with its result.
// The reference to `keep` (the buffer being written or read) holds it alive
// until the syscall has finished, whatever the caller drops meanwhile.
template <typename Op>
class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, Op op, Napi::Value keep)
      : Napi::AsyncWorker(env, "untorn"), op_(std::move(op)), deferred_(Napi::Promise::Deferred::New(env)) {
    if (keep.IsObject()) keep_ = Napi::Persistent(keep.As<Napi::Object>());
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override {
    unsigned now = ++pool_active;
    for (unsigned peak = pool_peak; now > peak && !pool_peak.compare_exchange_weak(peak, now);) {
    }
    op_.Run();
    --pool_active;
  }
  void OnOK() override { deferred_.Resolve(op_.Result(Env())); }

 private:
  Op op_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
};

template <typename Op>
Napi::Value RunSync(Napi::Env env, Op op) {
  op.Run();
  return op.Result(env);
}

template <typename Op>
Napi::Value RunAsync(Napi::Env env, Op op, Napi::Value keep = Napi::Value()) {
  auto* worker = new OpWorker<Op>(env, std::move(op), keep);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// Argument unpacking shared by the sync and async forms. The JS layer has
// already validated types and ranges; these checks only keep C++ memory-safe.
bool MakeStat(const Napi::CallbackInfo& info, StatOp* op) {
  if (info[0].IsString()) {
    *op = StatOp{info[0].As<Napi::String>().Utf8Value(), true, -1};
    return true;
  }
  if (info[0].IsNumber()) {
    *op = StatOp{std::string(), false, info[0].As<Napi::Number>().Int32Value()};
    return true;
  }
  return false;
}

bool MakeOpen(const Napi::CallbackInfo& info, OpenOp* op) {
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) return false;
  *op = OpenOp{info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
               info[2].As<Napi::Number>().Int32Value()};
  return true;
}

bool MakeWrite(const Napi::CallbackInfo& info, WriteOp* op) {
  void* data;
  size_t length;
  if (!info[0].IsNumber() || !ViewBytes(info[1], &data, &length) || !info[2].IsNumber() || !info[3].IsNumber())
    return false;
  *op = WriteOp{info[0].As<Napi::Number>().Int32Value(), data, length, info[2].As<Napi::Number>().Int64Value(),
                info[3].As<Napi::Number>().Int32Value()};
  return true;
}

bool MakeRead(const Napi::CallbackInfo& info, ReadOp* op) {
  void* data;
  size_t length;
  if (!info[0].IsNumber() || !ViewBytes(info[1], &data, &length) || !info[2].IsNumber()) return false;
  *op = ReadOp{info[0].As<Napi::Number>().Int32Value(), data, length, info[2].As<Napi::Number>().Int64Value()};
  return true;
}

template <int (*Call)(int)>
bool MakeFd(const Napi::CallbackInfo& info, FdOp* op) {
  if (!info[0].IsNumber()) return false;
  *op = FdOp{Call, info[0].As<Napi::Number>().Int32Value()};
  return true;
}

// One template pair gives every operation its sync and async export; the
// buffer argument (if any) is the value the async form keeps alive.
template <typename Op, bool (*Make)(const Napi::CallbackInfo&, Op*)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  Op op{};
  if (!Make(info, &op)) return Throw(info.Env(), "untorn: bad arguments to native call");
  return RunSync(info.Env(), std::move(op));
}

template <typename Op, bool (*Make)(const Napi::CallbackInfo&, Op*), int KeepArg = -1>
Napi::Value Async(const Napi::CallbackInfo& info) {
  Op op{};
  if (!Make(info, &op)) return Throw(info.Env(), "untorn: bad arguments to native call");
  return RunAsync(info.Env(), std::move(op), KeepArg >= 0 ? info[KeepArg] : Napi::Value());
}

// The address of a view's first byte: JS cannot see it, and O_DIRECT needs it
// aligned. User-space addresses on 64-bit Linux fit a double exactly.
Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  void* data;
  size_t length;
  if (info[0].IsArrayBuffer()) {
    data = info[0].As<Napi::ArrayBuffer>().Data();
  } else if (!ViewBytes(info[0], &data, &length)) {
    return Throw(info.Env(), "untorn: bufferAddress takes an ArrayBuffer or a view");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(data)));
}

// crc32c(view, seed): computed on the JS thread; a 16 KiB page takes about
// 2 µs, far less than a thread-pool round trip.
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  void* data;
  size_t length;
  if (!ViewBytes(info[0], &data, &length) || !info[1].IsNumber())
    return Throw(info.Env(), "untorn: bad arguments to native call");
  uint32_t seed = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), untorn::Crc32c(seed, data, length));
}

// lockFile(fd, kind): F_OFD_SETLK, never waits; kind 0 unlocks, 1 shared, 2 exclusive.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber() || !info[1].IsNumber()) return Throw(info.Env(), "untorn: bad arguments to native call");
  int kind = info[1].As<Napi::Number>().Int32Value();
  if (kind < 0 || kind > 2) return Throw(info.Env(), "untorn: bad arguments to native call");
  return Napi::Number::New(
      info.Env(), untorn::LockFile(info[0].As<Napi::Number>().Int32Value(), static_cast<untorn::LockKind>(kind)));
}

// The ring engine's exports. lib/engine.ts calls them only after ringOpen()
// returned 0 on this thread.
untorn::RingEngine* Engine(Napi::Env env) {
  int error;
  untorn::RingEngine* engine = untorn::RingEngineFor(env, &error);
  if (engine == nullptr) Napi::Error::New(env, "untorn: no io_uring on this thread").ThrowAsJavaScriptException();
  return engine;
}

Napi::Value RingOpen(const Napi::CallbackInfo& info) {
  int error;
  untorn::RingEngineFor(info.Env(), &error);
  return Napi::Number::New(info.Env(), error);
}

Napi::Value RingFlags(const Napi::CallbackInfo& info) {
  untorn::RingEngine* engine = Engine(info.Env());
  return engine == nullptr ? info.Env().Undefined() : Napi::Number::New(info.Env(), untorn::RingSetupFlags(engine));
}

Napi::Value PoolPeak(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), pool_peak.exchange(pool_active));
}

Napi::Value RingPeak(const Napi::CallbackInfo& info) {
  untorn::RingEngine* engine = Engine(info.Env());
  return engine == nullptr ? info.Env().Undefined() : Napi::Number::New(info.Env(), untorn::RingTakePeak(engine));
}

Napi::Value Submit(const Napi::CallbackInfo& info, std::vector<untorn::RingEntry> entries, std::vector<napi_value> keep,
                   bool datasync_after, bool as_array) {
  untorn::RingEngine* engine = Engine(info.Env());
  if (engine == nullptr) return info.Env().Undefined();
  return Napi::Value(info.Env(), untorn::RingSubmit(engine, info.Env(), std::move(entries), std::move(keep),
                                                    datasync_after, as_array));
}

// ringWrite(fd, view, position, rwflags) and ringRead(fd, view, position).
template <untorn::RingOp Op>
Napi::Value RingIo(const Napi::CallbackInfo& info) {
  void* data;
  size_t length;
  if (!info[0].IsNumber() || !ViewBytes(info[1], &data, &length) || !info[2].IsNumber() ||
      (Op == untorn::RingOp::kWrite && !info[3].IsNumber()))
    return Throw(info.Env(), "untorn: bad arguments to native call");
  int rwflags = Op == untorn::RingOp::kWrite ? info[3].As<Napi::Number>().Int32Value() : 0;
  untorn::RingEntry e{Op,     info[0].As<Napi::Number>().Int32Value(), data,
                      length, info[2].As<Napi::Number>().Int64Value(), rwflags};
  return Submit(info, {e}, {info[1]}, false, false);
}

// ringFsync(fd, datasync).
Napi::Value RingFsync(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber() || !info[1].IsBoolean()) return Throw(info.Env(), "untorn: bad arguments to native call");
  auto op = info[1].As<Napi::Boolean>().Value() ? untorn::RingOp::kFdatasync : untorn::RingOp::kFsync;
  return Submit(info, {untorn::RingEntry{op, info[0].As<Napi::Number>().Int32Value(), nullptr, 0, 0, 0}}, {}, false,
                false);
}

// ringWriteBatch(fd, views, positions, rwflags, datasync) and
// ringReadBatch(fd, views, positions): one request, one promise of an array.
template <untorn::RingOp Op>
Napi::Value RingBatch(const Napi::CallbackInfo& info) {
  bool write = Op == untorn::RingOp::kWrite;
  if (!info[0].IsNumber() || !info[1].IsArray() || !info[2].IsArray() ||
      (write && (!info[3].IsNumber() || !info[4].IsBoolean())))
    return Throw(info.Env(), "untorn: bad arguments to native call");
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto views = info[1].As<Napi::Array>();
  auto positions = info[2].As<Napi::Array>();
  uint32_t count = views.Length();
  if (positions.Length() != count) return Throw(info.Env(), "untorn: bad arguments to native call");
  int rwflags = write ? info[3].As<Napi::Number>().Int32Value() : 0;
  std::vector<untorn::RingEntry> entries;
  std::vector<napi_value> keep;
  entries.reserve(count);
  keep.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value view = views.Get(i);
    Napi::Value position = positions.Get(i);
    void* data;
    size_t length;
    if (!ViewBytes(view, &data, &length) || !position.IsNumber())
      return Throw(info.Env(), "untorn: bad arguments to native call");
    entries.push_back(untorn::RingEntry{Op, fd, data, length, position.As<Napi::Number>().Int64Value(), rwflags});
    keep.push_back(view);
  }
  return Submit(info, std::move(entries), std::move(keep), write && info[4].As<Napi::Boolean>().Value(), true);
}

template <typename Op, bool (*Make)(const Napi::CallbackInfo&, Op*), int KeepArg = -1>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Async<Op, Make, KeepArg>>(env, name));
  exports.Set(std::string(name) + "Sync", Napi::Function::New<Sync<Op, Make>>(env, name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Export<StatOp, MakeStat>(env, exports, "statx");
  Export<OpenOp, MakeOpen>(env, exports, "open");
  Export<WriteOp, MakeWrite, 1>(env, exports, "pwritev2");
  Export<ReadOp, MakeRead, 1>(env, exports, "preadv2");
  Export<FdOp, MakeFd<untorn::DataSync>>(env, exports, "fdatasync");
  Export<FdOp, MakeFd<untorn::Sync>>(env, exports, "fsync");
  Export<FdOp, MakeFd<untorn::Close>>(env, exports, "close");
  exports.Set("bufferAddress", Napi::Function::New<BufferAddress>(env, "bufferAddress"));
  exports.Set("crc32c", Napi::Function::New<Crc32c>(env, "crc32c"));
  exports.Set("crc32cImplementation", Napi::String::New(env, untorn::Crc32cImplementation()));
  exports.Set("lockFile", Napi::Function::New<LockFile>(env, "lockFile"));
  exports.Set("ringOpen", Napi::Function::New<RingOpen>(env, "ringOpen"));
  exports.Set("ringFlags", Napi::Function::New<RingFlags>(env, "ringFlags"));
  exports.Set("ringPeak", Napi::Function::New<RingPeak>(env, "ringPeak"));
  exports.Set("poolPeak", Napi::Function::New<PoolPeak>(env, "poolPeak"));
  exports.Set("ringWrite", Napi::Function::New<RingIo<untorn::RingOp::kWrite>>(env, "ringWrite"));
  exports.Set("ringRead", Napi::Function::New<RingIo<untorn::RingOp::kRead>>(env, "ringRead"));
  exports.Set("ringFsync", Napi::Function::New<RingFsync>(env, "ringFsync"));
  exports.Set("ringWriteBatch", Napi::Function::New<RingBatch<untorn::RingOp::kWrite>>(env, "ringWriteBatch"));
  exports.Set("ringReadBatch", Napi::Function::New<RingBatch<untorn::RingOp::kRead>>(env, "ringReadBatch"));
  exports.Set("RWF_ATOMIC", untorn::kRwfAtomic);
  exports.Set("RWF_DSYNC", untorn::kRwfDsync);
  exports.Set("STATX_WRITE_ATOMIC", untorn::kStatxWriteAtomic);
  exports.Set("STATX_ATTR_WRITE_ATOMIC", static_cast<double>(untorn::kStatxAttrWriteAtomic));
  return exports;
}

}  // namespace

NODE_API_MODULE(untorn, Init)
