#include "registry/early_uploads.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/transfer.hpp"

namespace kiln {
namespace {

// A blob's bytes that stop coming once the build has ended: the upload fails at its next read.
class CancellableReader final : public Reader {
public:
    CancellableReader(std::unique_ptr<Reader> inner, std::shared_ptr<std::atomic<bool>> cancelled)
        : m_inner(std::move(inner)), m_cancelled(std::move(cancelled)) {}
    Result<size_t> read(char* buffer, size_t size) override {
        if (*m_cancelled) return fail("the build ended before this upload did");
        return m_inner->read(buffer, size);
    }

private:
    std::unique_ptr<Reader> m_inner;
    std::shared_ptr<std::atomic<bool>> m_cancelled;
};

RegistryClientOptions stoppable(RegistryClientOptions options, std::shared_ptr<const std::atomic<bool>> stop) {
    options.retry.stop = std::move(stop);
    return options;
}

}  // namespace

EarlyUploads::EarlyUploads(RegistryClientOptions options, const std::vector<Reference>& destinations, size_t jobs)
    : m_client(stoppable(std::move(options), m_cancelled)),
      m_repositories(upload_repositories(destinations)),
      m_jobs(std::max<size_t>(jobs, 1)) {}

EarlyUploads::~EarlyUploads() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        m_queue.clear();
    }
    *m_cancelled = true;
    m_changed.notify_all();
    for (std::thread& worker : m_workers) worker.join();
}

void EarlyUploads::add(const BlobUpload& upload) {
    std::lock_guard lock(m_mutex);
    if (m_stopping) return;
    for (const Reference& repository : m_repositories)
        if (m_added.insert(uploaded_blob_key(repository, upload.blob.digest)).second)
            m_queue.push_back(Upload{upload, &repository});
    // One worker per upload waiting, up to the jobs allowed.
    size_t idle = m_workers.size() - std::min(m_workers.size(), m_running);
    for (size_t i = idle; i < m_queue.size() && m_workers.size() < m_jobs; ++i)
        m_workers.emplace_back([this] { work(); });
    m_changed.notify_all();
}

std::set<std::string> EarlyUploads::wait() {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_queue.empty() && m_running == 0; });
    return m_done;
}

void EarlyUploads::work() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_changed.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
        if (m_stopping) return;
        Upload next = std::move(m_queue.front());
        m_queue.pop_front();
        ++m_running;
        lock.unlock();
        bool uploaded = upload(next);
        lock.lock();
        --m_running;
        if (uploaded) m_done.insert(uploaded_blob_key(*next.repository, next.blob.blob.digest));
        m_changed.notify_all();
    }
}

bool EarlyUploads::upload(const Upload& upload) {
    BlobUpload cancellable = upload.blob;
    cancellable.open = [&, cancelled = m_cancelled]() -> Result<std::unique_ptr<Reader>> {
        if (*cancelled) return fail("the build ended before this upload started");
        KILN_ASSIGN(std::unique_ptr<Reader> reader, upload.blob.open());
        return std::make_unique<CancellableReader>(std::move(reader), cancelled);
    };
    Status pushed = push_blob_logged(m_client, *upload.repository, cancellable);
    if (!pushed && !*m_cancelled)
        log_warn(pushed.error().message(), "; the push at the end of the build sends it again");
    return static_cast<bool>(pushed);
}

}  // namespace kiln
