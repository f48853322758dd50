// The ring: a small io_uring over raw syscalls (no liburing, so the prebuilt
// addon needs no shared library and the few calls untorn makes stay in view).
// Plain C++, no N-API; one Ring belongs to one thread, the one that made it.
#pragma once

#include <linux/io_uring.h>

#include <cstddef>
#include <cstdint>

namespace untorn {

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { Close(); }

  // Makes the ring, trying setup flags from the best to none, as fio does, and
  // registers an eventfd that the kernel signals when completions are posted.
  // Returns 0, or -errno of the last attempt.
  int Open(unsigned entries);
  void Close();

  unsigned setup_flags() const { return setup_flags_; }
  unsigned cq_entries() const { return cq_entries_; }
  int event_fd() const { return event_fd_; }

  // A zeroed SQE to fill, or null when the submission queue is full.
  io_uring_sqe* NextSqe(uint64_t user_data);
  // Hands every filled SQE to the kernel in one io_uring_enter, and runs
  // deferred completion work (DEFER_TASKRUN posts CQEs only then).
  // Returns the number submitted, or -errno.
  int Enter(unsigned min_complete);
  // Calls done(user_data, res) for every posted CQE; returns how many.
  template <typename Done>
  unsigned Reap(Done done);
  // Empties the eventfd's counter, so that the next completion wakes the poll again.
  void DrainEventFd();

 private:
  int ring_fd_ = -1;
  int event_fd_ = -1;
  unsigned setup_flags_ = 0;
  unsigned cq_entries_ = 0;
  unsigned unpublished_ = 0;  // SQEs filled since the last Enter
  // The mmapped rings; with IORING_FEAT_SINGLE_MMAP sq and cq share one mapping.
  void* sq_map_ = nullptr;
  size_t sq_map_size_ = 0;
  void* cq_map_ = nullptr;
  size_t cq_map_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_size_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
};

// The operations untorn puts on the ring; each is its syscall's equivalent.
void PrepWrite(io_uring_sqe* sqe, int fd, const void* data, size_t length, int64_t position, int rwflags);
void PrepRead(io_uring_sqe* sqe, int fd, void* data, size_t length, int64_t position);
void PrepFsync(io_uring_sqe* sqe, int fd, bool datasync);

template <typename Done>
unsigned Ring::Reap(Done done) {
  unsigned head = *cq_head_;
  // Acquire: the CQE contents are visible once the kernel's tail store is.
  unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
  unsigned count = 0;
  for (; head != tail; head++, count++) {
    const io_uring_cqe& cqe = cqes_[head & cq_mask_];
    done(cqe.user_data, cqe.res);
  }
  __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  return count;
}

}  // namespace untorn
