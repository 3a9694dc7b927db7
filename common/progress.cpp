#include "common/progress.hpp"

#include <algorithm>
#include <mutex>

#include "common/log.hpp"

namespace kiln {
namespace {

std::mutex g_mutex;
std::uint64_t g_next_id = 1;

std::vector<std::shared_ptr<TransferProgress::State>>& in_flight() {
    static std::vector<std::shared_ptr<TransferProgress::State>> transfers;
    return transfers;
}

}  // namespace

TransferProgress::TransferProgress(std::string label, std::uint64_t total) {
    auto state = std::make_shared<State>();
    state->label = std::move(label);
    state->stage = LogLabel::current().stage;
    state->total = total;
    state->started = std::chrono::steady_clock::now();
    std::lock_guard lock(g_mutex);
    state->id = g_next_id++;
    in_flight().push_back(state);
    m_state = std::move(state);
}

TransferProgress::~TransferProgress() { finish(); }

void TransferProgress::finish() {
    std::lock_guard lock(g_mutex);
    auto& transfers = in_flight();
    transfers.erase(std::remove(transfers.begin(), transfers.end(), m_state), transfers.end());
}

std::vector<TransferSnapshot> transfers_in_flight() {
    std::lock_guard lock(g_mutex);
    std::vector<TransferSnapshot> snapshots;
    for (const auto& state : in_flight())
        snapshots.push_back(TransferSnapshot{.id = state->id,
                                             .label = state->label,
                                             .stage = state->stage,
                                             .done = state->done.load(std::memory_order_relaxed),
                                             .total = state->total,
                                             .started = state->started});
    return snapshots;
}

}  // namespace kiln
