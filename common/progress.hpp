#pragma once
// Transfers in flight (pulls, pushes, extractions, layers being written), for whoever shows progress: the CLI
// polls them. Reporting costs an atomic addition per chunk, and nothing is shown unless someone looks.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/stream.hpp"

namespace kiln {

// What a look at the transfers in flight sees of one of them.
struct TransferSnapshot {
    std::uint64_t id = 0;  // unique for the process's life
    std::string label;     // "pull sha256:0123456789ab"
    std::string stage;     // the stage it works for, "" when none
    std::uint64_t done = 0;
    std::uint64_t total = 0;  // 0: not known
    std::chrono::steady_clock::time_point started;
};

// One transfer, in flight while it lives.
class TransferProgress {
public:
    // `total` bytes are expected (0: not known). The stage is the calling thread's (LogLabel).
    TransferProgress(std::string label, std::uint64_t total);
    ~TransferProgress();
    TransferProgress(const TransferProgress&) = delete;
    TransferProgress& operator=(const TransferProgress&) = delete;

    void add(std::uint64_t bytes) { m_state->done.fetch_add(bytes, std::memory_order_relaxed); }
    // Starts the count over (a download that starts over).
    void restart() { m_state->done.store(0, std::memory_order_relaxed); }
    // Leaves the transfers in flight now, before it is destroyed: before the line that says it is done.
    void finish();

    struct State {
        std::uint64_t id;
        std::string label;
        std::string stage;
        std::uint64_t total;
        std::chrono::steady_clock::time_point started;
        std::atomic<std::uint64_t> done{0};
    };

private:
    std::shared_ptr<State> m_state;
};

// The transfers in flight now, oldest first.
std::vector<TransferSnapshot> transfers_in_flight();

// A reader whose bytes count towards a transfer.
class ProgressReader final : public Reader {
public:
    ProgressReader(Reader& inner, TransferProgress& progress) : m_inner(inner), m_progress(progress) {}
    Result<size_t> read(char* buffer, size_t size) override {
        Result<size_t> n = m_inner.read(buffer, size);
        if (n) m_progress.add(*n);
        return n;
    }

private:
    Reader& m_inner;
    TransferProgress& m_progress;
};

// A writer whose bytes count towards a transfer; rewinding starts the count over.
class ProgressWriter final : public RewindableWriter {
public:
    ProgressWriter(RewindableWriter& inner, TransferProgress& progress)
        : m_inner(inner), m_progress(progress) {}
    Status write(const char* buffer, size_t size) override {
        KILN_TRY(m_inner.write(buffer, size));
        m_progress.add(size);
        return {};
    }
    Status rewind() override {
        m_progress.restart();
        return m_inner.rewind();
    }

private:
    RewindableWriter& m_inner;
    TransferProgress& m_progress;
};

}  // namespace kiln
