#include "registry/transfer.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include "common/log.hpp"
#include "common/parallel.hpp"
#include "common/progress.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// A reader of its own whose bytes count towards a transfer.
class OwnedProgressReader final : public Reader {
public:
    OwnedProgressReader(std::unique_ptr<Reader> inner, TransferProgress& progress)
        : m_inner(std::move(inner)), m_counted(*m_inner, progress) {}
    Result<size_t> read(char* buffer, size_t size) override { return m_counted.read(buffer, size); }

private:
    std::unique_ptr<Reader> m_inner;
    ProgressReader m_counted;
};

// "12.3 MB in 0.4 s (30.8 MB/s)".
std::string rate(std::uint64_t bytes, double seconds) {
    std::string text = str_cat(format_bytes(bytes), " in ", format_seconds(seconds), " s");
    if (seconds >= 0.05) text += str_cat(" (", format_bytes(static_cast<std::uint64_t>(bytes / seconds)), "/s)");
    return text;
}

// Destinations grouped by registry, in the order given, each repository once.
std::vector<std::vector<const Reference*>> by_registry(const std::vector<Reference>& destinations) {
    std::vector<std::vector<const Reference*>> groups;
    for (const Reference& destination : destinations) {
        auto group = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
            return g.front()->registry() == destination.registry();
        });
        if (group == groups.end()) {
            groups.push_back({&destination});
        } else if (std::none_of(group->begin(), group->end(), [&](const Reference* r) {
                       return r->repository() == destination.repository();
                   })) {
            group->push_back(&destination);
        }
    }
    return groups;
}

// Pushes `blobs` to `destination`, each mounted from its own mount_from, or from `mount_from` when given.
Status push_blobs(RegistryClient& client, const Reference& destination, const std::vector<BlobUpload>& blobs,
                  const std::optional<Reference>& mount_from, const PushOptions& options) {
    return run_bounded(blobs.size(), std::max<size_t>(options.jobs, 1), [&](size_t i) -> Status {
        BlobUpload upload = blobs[i];
        if (options.uploaded.contains(uploaded_blob_key(destination, upload.blob.digest))) {
            log_debug(upload.kind, " ", upload.blob.digest.short_str(), " to ", destination.name(),
                      ": uploaded while the image was built");
            return {};
        }
        if (mount_from) upload.mount_from = mount_from;
        return push_blob_logged(client, destination, upload);
    });
}

}  // namespace

Result<std::uint64_t> pull_blobs(RegistryClient& client, const Reference& repository,
                                 const std::vector<Descriptor>& blobs, const BlobStore& store,
                                 const TransferOptions& options) {
    std::vector<const Descriptor*> missing;
    std::set<std::string> seen;
    for (const Descriptor& blob : blobs)
        if (!store.contains(blob.digest) && seen.insert(blob.digest.str()).second) missing.push_back(&blob);
    Status pulled_all = run_bounded(missing.size(), std::max<size_t>(options.jobs, 1), [&](size_t i) -> Status {
        const Descriptor& blob = *missing[i];
        auto start = std::chrono::steady_clock::now();
        std::string what = str_cat("pulling ", blob.digest.str(), " from ", repository.name());
        KILN_ASSIGN(BlobIngest ingest, with_context(store.begin(), what));
        TransferProgress progress(str_cat("pull ", blob.digest.short_str()), static_cast<std::uint64_t>(blob.size));
        ProgressWriter counted(ingest, progress);
        KILN_TRY_CONTEXT(client.fetch_blob(repository, blob, counted), what);
        KILN_TRY_CONTEXT(ingest.commit(blob.digest), what);
        progress.finish();
        double seconds = seconds_since(start);
        log_event(LogLevel::info, LogEvent::blob_pulled,
                  str_cat("pulled ", blob.digest.short_str(), " from ", repository.name(), ": ",
                          rate(static_cast<std::uint64_t>(blob.size), seconds)),
                  {{"digest", blob.digest.str()},
                   {"size", blob.size},
                   {"repository", repository.name()},
                   {"seconds", seconds}});
        return {};
    });
    KILN_TRY(std::move(pulled_all));
    std::uint64_t pulled = 0;
    for (const Descriptor* blob : missing) pulled += static_cast<std::uint64_t>(blob->size);
    return pulled;
}

std::vector<Reference> upload_repositories(const std::vector<Reference>& destinations) {
    std::vector<Reference> repositories;
    for (const std::vector<const Reference*>& group : by_registry(destinations)) repositories.push_back(*group.front());
    return repositories;
}

std::string uploaded_blob_key(const Reference& repository, const Digest& digest) {
    return str_cat(repository.registry(), "/", repository.repository(), "@", digest.str());
}

std::vector<BlobUpload> image_uploads(const Image& image, const ImageDocuments& documents,
                                      const std::map<std::string, Reference>& origins) {
    std::vector<BlobUpload> blobs;
    std::set<std::string> seen;
    for (const LayerPtr& layer : image.layers()) {
        if (!seen.insert(layer->descriptor().digest.str()).second) continue;
        auto origin = origins.find(layer->descriptor().digest.str());
        blobs.push_back({.blob = layer->descriptor(),
                         .open = [layer] { return layer->open_blob(); },
                         .mount_from = origin == origins.end() ? std::nullopt : std::optional(origin->second)});
    }
    blobs.push_back(config_upload(documents));
    return blobs;
}

BlobUpload config_upload(const ImageDocuments& documents) {
    return BlobUpload{.blob = documents.config,
                      .open = [config = documents.config_bytes]() -> Result<std::unique_ptr<Reader>> {
                          return std::make_unique<StringReader>(config);
                      },
                      .kind = "config",
                      .bytes = BlobBytes::at_hand};
}

Status push_blob_logged(RegistryClient& client, const Reference& destination, const BlobUpload& upload) {
    auto start = std::chrono::steady_clock::now();
    const Descriptor& blob = upload.blob;
    const std::optional<Reference>& mount_from = upload.mount_from;
    TransferProgress progress(str_cat("push ", upload.kind, " ", blob.digest.short_str()),
                              static_cast<std::uint64_t>(blob.size));
    // Each try reads from the first byte: the count starts over with it.
    BlobOpener counted = [&]() -> Result<std::unique_ptr<Reader>> {
        KILN_ASSIGN(std::unique_ptr<Reader> reader, upload.open());
        progress.restart();
        return std::make_unique<OwnedProgressReader>(std::move(reader), progress);
    };
    KILN_ASSIGN(BlobPush pushed,
                with_context(client.push_blob(destination, blob, counted, mount_from, upload.bytes),
                             str_cat("pushing ", upload.kind, " ", blob.digest.str(), " to ", destination.name())));
    progress.finish();
    auto size = static_cast<std::uint64_t>(blob.size);
    std::string what = str_cat(upload.kind, " ", blob.digest.short_str(), " to ", destination.name());
    double seconds = seconds_since(start);
    auto fields = [&](std::string how) -> std::vector<LogField> {
        return {{"digest", blob.digest.str()},
                {"size", blob.size},
                {"repository", destination.name()},
                {"kind", upload.kind},
                {"seconds", seconds},
                {"how", std::move(how)}};
    };
    switch (pushed) {
        case BlobPush::uploaded:
            log_event(LogLevel::info, LogEvent::blob_pushed, str_cat("pushed ", what, ": ", rate(size, seconds)),
                      fields("uploaded"));
            break;
        case BlobPush::mounted:
            log_event(LogLevel::info, LogEvent::blob_pushed,
                      str_cat("mounted ", what, " from ", mount_from ? mount_from->repository() : "", " (",
                              format_bytes(size), ")"),
                      fields("mounted"));
            break;
        case BlobPush::already_present: log_debug(what, ": already there"); break;
    }
    return {};
}

bool is_immutable_tag_error(const Error& error) {
    std::string message = to_lower(error.message());
    // "…cannot be overwritten because the repository is immutable" (ECR), "The repository has enabled tag
    // immutability" (Artifact Registry), "…configured as immutable" (Harbor), "…due to immutability settings"
    // (Docker Hub).
    return message.find("immutab") != std::string::npos;
}

Status push_image(RegistryClient& client, const std::vector<Reference>& destinations, const Image& image,
                  const ImageDocuments& documents, const PushOptions& options) {
    KILN_TRY(check_image_documents(image, documents));
    std::vector<BlobUpload> blobs = image_uploads(image, documents, options.blob_origins);
    for (const std::vector<const Reference*>& group : by_registry(destinations)) {
        const Reference& first = *group.front();
        // The first repository gets the bytes, from the base image's repository where the blob came from.
        KILN_TRY(push_blobs(client, first, blobs, std::nullopt, options));
        // The others mount them from the first.
        for (size_t i = 1; i < group.size(); ++i) KILN_TRY(push_blobs(client, *group[i], blobs, first, options));
    }
    // Manifests last, once every blob is everywhere: no destination is tagged with an incomplete image.
    for (const Reference& destination : destinations) {
        std::string where = str_cat("pushing the manifest of ", destination.str());
        auto put = client.push_manifest(destination, documents.manifest.media_type, documents.manifest_bytes);
        if (!put && options.ignore_immutable_tag_errors && !destination.tag().empty() &&
            is_immutable_tag_error(put.error())) {
            log_warn(destination.str(), ": the registry keeps the tag's image, as the tag is immutable (",
                     put.error().message(), "); counted as pushed (--push-ignore-immutable-tag-errors), but the tag "
                     "does not name ", documents.manifest.digest.str(), " unless it did before");
            continue;
        }
        KILN_ASSIGN(Digest pushed, with_context(std::move(put), where));
        if (pushed != documents.manifest.digest)
            return fail(str_cat(where, ": the registry stored digest ", pushed.str(), ", expected ",
                                documents.manifest.digest.str()));
        log_info("pushed ", destination.str(), "@", pushed.str());
    }
    return {};
}

}  // namespace kiln
