#pragma once
// Blobs of an image uploaded to its destinations while the image is still being built: each layer goes up as
// soon as it is written, while the next step runs, and at the end the config and the layers that came from
// elsewhere (mounted or found present) go up together with the last one, so that the push has only the manifest
// left to send. Best effort: an upload that fails here is only logged, and the final push (push_image) sends that
// blob again under the full retry policy. Nothing is tagged here.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "images/descriptor.hpp"
#include "registry/client.hpp"
#include "registry/reference.hpp"
#include "registry/transfer.hpp"

namespace kiln {

class EarlyUploads {
public:
    // Uploads go to the repository push_image gives the bytes to on each destination registry, `jobs` at a time,
    // with a client of their own made from `options` (retried as the push would be).
    EarlyUploads(RegistryClientOptions options, const std::vector<Reference>& destinations, size_t jobs);
    // Drops what has not started and ends what has: an upload in flight fails at its next read, and one waiting
    // to retry gives up.
    ~EarlyUploads();
    EarlyUploads(const EarlyUploads&) = delete;
    EarlyUploads& operator=(const EarlyUploads&) = delete;

    // Starts uploading `upload` to every destination registry in the background, unless it was added before.
    void add(const BlobUpload& upload);

    // Waits for every upload added so far; returns the keys (uploaded_blob_key) of those now in place, for
    // PushOptions::uploaded.
    std::set<std::string> wait();

private:
    struct Upload {
        BlobUpload blob;
        const Reference* repository;
    };
    void work();
    bool upload(const Upload& upload);

    std::shared_ptr<std::atomic<bool>> m_cancelled = std::make_shared<std::atomic<bool>>(false);
    RegistryClient m_client;
    std::vector<Reference> m_repositories;  // the first destination of each registry
    size_t m_jobs;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Upload> m_queue;
    size_t m_running = 0;
    bool m_stopping = false;
    std::set<std::string> m_added;  // uploaded_blob_key of every upload queued, running or done
    std::set<std::string> m_done;
    std::vector<std::thread> m_workers;
};

}  // namespace kiln
