// EarlyUploads against a real registry process: blobs go up in the background, and a build that ends early
// stops them.
#include "registry/early_uploads.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "registry/transfer.hpp"
#include "tests/registry/live_registry.hpp"
#include "tests/registry/test_image.hpp"
#include "tests/support/random_bytes.hpp"

namespace kiln {
namespace {

using test::describe;
using test::pseudo_random_bytes;

// Bytes that come slowly: one small piece every 20 ms.
class SlowReader final : public Reader {
public:
    explicit SlowReader(std::string bytes) : m_bytes(std::move(bytes)) {}
    Result<size_t> read(char* buffer, size_t size) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        size_t n = std::min({size, m_bytes.size() - m_offset, size_t{1024}});
        std::copy_n(m_bytes.data() + m_offset, n, buffer);
        m_offset += n;
        return n;
    }

private:
    std::string m_bytes;
    size_t m_offset = 0;
};

using EarlyUploadsTest = test::LiveRegistryTest;

TEST_F(EarlyUploadsTest, AddedBlobsAreInTheFirstRepositoryOfEachRegistryOnceWaitReturns) {
    Reference first = reference("team/app:1");
    Reference second = reference("team/other:1");
    std::string one = pseudo_random_bytes(300000);
    std::string two = "a small layer";
    Descriptor blob_one = describe(media_type::oci_layer, one);
    Descriptor blob_two = describe(media_type::oci_layer, two);
    EarlyUploads uploads(m_options, {first, second}, 2);
    uploads.add({.blob = blob_one, .open = [&]() -> Result<std::unique_ptr<Reader>> {
                     return std::make_unique<StringReader>(one);
                 }});
    uploads.add({.blob = blob_two, .open = [&]() -> Result<std::unique_ptr<Reader>> {
                     return std::make_unique<StringReader>(two);
                 }});
    std::set<std::string> done = uploads.wait();
    EXPECT_EQ(done, (std::set<std::string>{uploaded_blob_key(first, blob_one.digest),
                                           uploaded_blob_key(first, blob_two.digest)}));
    for (const Descriptor& blob : {blob_one, blob_two}) {
        auto there = m_client->blob_exists(first, blob.digest);
        ASSERT_TRUE(there) << there.error().message();
        EXPECT_TRUE(*there) << blob.digest.str();
        // The other repository of the same registry gets them from the final push, by mount.
        auto elsewhere = m_client->blob_exists(second, blob.digest);
        ASSERT_TRUE(elsewhere) << elsewhere.error().message();
        EXPECT_FALSE(*elsewhere) << blob.digest.str();
    }
}

TEST_F(EarlyUploadsTest, AnUploadThatFailsIsNotCountedAsDone) {
    Descriptor blob = describe(media_type::oci_layer, std::string("the right bytes"));
    EarlyUploads uploads(m_options, {reference("team/app:1")}, 1);
    uploads.add({.blob = blob, .open = []() -> Result<std::unique_ptr<Reader>> {
                     return std::make_unique<StringReader>(std::string("other bytes, other digest"));
                 }});
    EXPECT_TRUE(uploads.wait().empty());
    auto there = m_client->blob_exists(reference("team/app"), blob.digest);
    ASSERT_TRUE(there) << there.error().message();
    EXPECT_FALSE(*there);
}

TEST_F(EarlyUploadsTest, ABlobAddedAgainIsNotSentAgain) {
    std::string bytes = pseudo_random_bytes(200000);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    std::atomic<int> opened = 0;
    EarlyUploads uploads(m_options, {reference("team/app:1")}, 2);
    BlobUpload upload{.blob = blob, .open = [&]() -> Result<std::unique_ptr<Reader>> {
                          ++opened;
                          return std::make_unique<StringReader>(bytes);
                      }};
    uploads.add(upload);
    uploads.wait();
    uploads.add(upload);
    EXPECT_EQ(uploads.wait().size(), 1u);
    EXPECT_EQ(opened, 1);
}

TEST_F(EarlyUploadsTest, ABlobWithAnOriginOnTheRegistryIsMountedUnread) {
    std::string bytes = pseudo_random_bytes(200000);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    StringReader source(bytes);
    ASSERT_TRUE(m_client->push_blob(reference("team/base"), blob, source));
    EarlyUploads uploads(m_options, {reference("team/app:1")}, 1);
    uploads.add({.blob = blob,
                 .open = []() -> Result<std::unique_ptr<Reader>> { return fail("the bytes are not here"); },
                 .mount_from = reference("team/base")});
    EXPECT_EQ(uploads.wait(), (std::set<std::string>{uploaded_blob_key(reference("team/app:1"), blob.digest)}));
    auto there = m_client->blob_exists(reference("team/app"), blob.digest);
    ASSERT_TRUE(there) << there.error().message();
    EXPECT_TRUE(*there);
}

TEST_F(EarlyUploadsTest, DestroyingItEndsAnUploadInFlight) {
    // About 25 s of bytes at the reader's pace.
    std::string bytes = pseudo_random_bytes(1280 * 1024);
    Descriptor blob = describe(media_type::oci_layer, bytes);
    std::chrono::steady_clock::time_point start;
    {
        EarlyUploads uploads(m_options, {reference("team/app:1")}, 1);
        uploads.add({.blob = blob, .open = [&]() -> Result<std::unique_ptr<Reader>> {
                         return std::make_unique<SlowReader>(bytes);
                     }});
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        start = std::chrono::steady_clock::now();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    auto there = m_client->blob_exists(reference("team/app"), blob.digest);
    ASSERT_TRUE(there) << there.error().message();
    EXPECT_FALSE(*there);
}

}  // namespace
}  // namespace kiln
