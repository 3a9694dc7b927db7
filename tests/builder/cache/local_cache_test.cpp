#include "builder/cache/local_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <functional>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "builder/cache/key_inputs.hpp"
#include "builder/cache/tree_digest.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "images/blob_store.hpp"
#include "layers/compression.hpp"
#include "tests/support/gzip_layer.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

using std::chrono::seconds;

constexpr std::int64_t k_now = 1'800'000'000;

// A real gzip layer in its own store, as a build would have written it.
class LocalCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-local-cache-test-"));
        auto store = BlobStore::open(m_dir.path() + "/build-store");
        ASSERT_TRUE(store);
        m_store = std::make_unique<BlobStore>(std::move(*store));
        m_layer = make_layer(test::TestTar().file("app/run1", "1234\n").bytes());
    }

    LayerPtr make_layer(const std::string& tar) {
        auto layer = test::gzip_layer(*m_store, tar);
        EXPECT_TRUE(layer) << layer.error().message();
        return layer ? *layer : nullptr;
    }

    std::unique_ptr<LocalLayerCache> open(std::int64_t now = k_now, seconds ttl = seconds(3600)) {
        auto cache = LocalLayerCache::open(m_dir.path() + "/cache", ttl, now);
        EXPECT_TRUE(cache) << cache.error().message();
        return std::move(*cache);
    }

    Digest key(const std::string& name) const { return Digest::of_bytes(name); }

    void set_blob_mtime(std::time_t when) {
        std::string blob = m_dir.path() + "/cache/blobs/sha256/" + m_layer->descriptor().digest.encoded();
        struct timespec times[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT}, {.tv_sec = when, .tv_nsec = 0}};
        ASSERT_EQ(::utimensat(AT_FDCWD, blob.c_str(), times, 0), 0);
    }
    // As if the cached blob had been stored an hour ago.
    void set_blob_written_an_hour_ago() { set_blob_mtime(::time(nullptr) - 3600); }

    TempDir m_dir;
    std::unique_ptr<BlobStore> m_store;
    LayerPtr m_layer;
    test::LogCapture m_log;
};

TEST_F(LocalCacheTest, AStoredLayerIsFoundByItsKeyWithItsDigestAndDiffId) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    auto hit = open()->lookup(key("a"));
    ASSERT_TRUE(hit) << hit.error().message();
    ASSERT_TRUE(*hit);
    ASSERT_TRUE((*hit)->layer);
    EXPECT_EQ((*hit)->layer->descriptor(), m_layer->descriptor());
    EXPECT_EQ((*hit)->layer->diff_id(), m_layer->diff_id());
    EXPECT_EQ((*hit)->created, k_now);
    EXPECT_FALSE(*open()->lookup(key("b")));
}

TEST_F(LocalCacheTest, AStepThatMadeNoLayerIsAHitWithoutOne) {
    ASSERT_TRUE(open()->store(key("workdir"), nullptr));
    auto hit = open()->lookup(key("workdir"));
    ASSERT_TRUE(hit && *hit);
    EXPECT_FALSE((*hit)->layer);
}

TEST_F(LocalCacheTest, AnEntryOlderThanTheTtlIsAMiss) {
    ASSERT_TRUE(open(k_now)->store(key("a"), m_layer));
    EXPECT_TRUE(*open(k_now + 3599)->lookup(key("a")));
    EXPECT_FALSE(*open(k_now + 3601)->lookup(key("a")));
}

TEST_F(LocalCacheTest, ABlobThatFailsItsDigestIsAMissWithAWarning) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    std::string blob = m_dir.path() + "/cache/blobs/sha256/" + m_layer->descriptor().digest.encoded();
    std::string bytes = *read_file(blob);
    bytes[bytes.size() / 2] ^= 0x20;
    ASSERT_TRUE(write_file_atomic(blob, bytes));
    auto hit = open()->lookup(key("a"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
    EXPECT_TRUE(m_log.contains("is not used")) << m_log.text();
}

// A blob is read whole to be verified once: later lookups trust its stamp while the file is unchanged.
TEST_F(LocalCacheTest, AVerifiedBlobIsNotReadAgainWhileItsFileIsUnchanged) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    auto cache = open();
    ASSERT_TRUE(*cache->lookup(key("a")));
    ASSERT_TRUE(*cache->lookup(key("a")));
    EXPECT_EQ(cache->blobs_verified(), 0u) << "the build that stored the layer stamped it";
    // Without the stamp, one lookup reads the blob and stamps it again.
    ASSERT_EQ(::unlink((m_dir.path() + "/cache/verified/" + m_layer->descriptor().digest.encoded()).c_str()), 0);
    set_blob_written_an_hour_ago();
    ASSERT_TRUE(*cache->lookup(key("a")));
    ASSERT_TRUE(*cache->lookup(key("a")));
    EXPECT_EQ(cache->blobs_verified(), 1u);
}

// A write in the clock tick of the check would leave the mtime as it was: a blob written seconds ago, or (a clock
// ahead, on a shared volume) later than now, is read at each lookup until it is older.
TEST_F(LocalCacheTest, ABlobWrittenJustNowIsNotStampedByALookup) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    ASSERT_EQ(::unlink((m_dir.path() + "/cache/verified/" + m_layer->descriptor().digest.encoded()).c_str()), 0);
    // Later than now rather than now: however slow this machine, the lookups below come within two seconds of it.
    set_blob_mtime(::time(nullptr) + 3600);
    auto cache = open();
    ASSERT_TRUE(*cache->lookup(key("a")));
    ASSERT_TRUE(*cache->lookup(key("a")));
    EXPECT_EQ(cache->blobs_verified(), 2u);
}

// kiln hard-links cached blobs to hand them over (the extracted layers' keeper): that is no change.
TEST_F(LocalCacheTest, AHardLinkToAStampedBlobKeepsItsStamp) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    std::string blob = m_dir.path() + "/cache/blobs/sha256/" + m_layer->descriptor().digest.encoded();
    ASSERT_EQ(::link(blob.c_str(), (m_dir.path() + "/handed").c_str()), 0);
    ASSERT_EQ(::unlink((m_dir.path() + "/handed").c_str()), 0);
    auto cache = open();
    ASSERT_TRUE(*cache->lookup(key("a")));
    EXPECT_EQ(cache->blobs_verified(), 0u);
}

TEST_F(LocalCacheTest, ABlobChangedInPlaceAfterItWasStampedIsAMiss) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    set_blob_written_an_hour_ago();
    auto first = open();
    ASSERT_TRUE(*first->lookup(key("a")));
    ASSERT_EQ(first->blobs_verified(), 1u) << "the blob's new mtime voids the stamp of the store";
    // The same size, the same inode: only its bytes and its mtime change.
    std::string blob = m_dir.path() + "/cache/blobs/sha256/" + m_layer->descriptor().digest.encoded();
    std::string bytes = *read_file(blob);
    bytes[bytes.size() / 2] ^= 0x20;
    UniqueFd fd(::open(blob.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    fd.reset();
    auto cache = open();
    auto hit = cache->lookup(key("a"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
    EXPECT_EQ(cache->blobs_verified(), 1u);
    EXPECT_TRUE(m_log.contains("is not used")) << m_log.text();
}

// The stamp is for the blob and the diffID it was checked against: an entry claiming another is read again.
TEST_F(LocalCacheTest, AStampDoesNotVouchForAnotherDiffId) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    ASSERT_TRUE(*open()->lookup(key("a")));
    std::string entry = m_dir.path() + "/cache/entries/" + key("a").encoded() + ".json";
    nlohmann::json document = nlohmann::json::parse(*read_file(entry));
    document["layer"]["diffID"] = Digest::of_bytes("another tar").str();
    ASSERT_TRUE(write_file_atomic(entry, document.dump()));
    EXPECT_FALSE(*open()->lookup(key("a")));
}

TEST_F(LocalCacheTest, AnEntryClaimingAnotherDiffIdIsAMiss) {
    ASSERT_TRUE(open()->store(key("a"), m_layer));
    std::string entry = m_dir.path() + "/cache/entries/" + key("a").encoded() + ".json";
    nlohmann::json document = nlohmann::json::parse(*read_file(entry));
    document["layer"]["diffID"] = Digest::of_bytes("another tar").str();
    ASSERT_TRUE(write_file_atomic(entry, document.dump()));
    EXPECT_FALSE(*open()->lookup(key("a")));
    EXPECT_TRUE(m_log.contains("diffID")) << m_log.text();
}

TEST_F(LocalCacheTest, MalformedAndHostileEntriesAreMisses) {
    std::string entries = m_dir.path() + "/cache/entries/";
    auto cache = open();
    for (const std::string& text : {std::string("not json"), std::string("{\"created\": \"yesterday\", \"layer\": null}"),
                                    std::string("{\"created\": 1, \"layer\": {\"mediaType\": \"text/plain\"}}"),
                                    std::string(70 << 10, ' ')}) {
        ASSERT_TRUE(write_file_atomic(entries + key("x").encoded() + ".json", text));
        auto hit = cache->lookup(key("x"));
        ASSERT_TRUE(hit);
        EXPECT_FALSE(*hit) << text.substr(0, 40);
    }
    nlohmann::json missing_blob = {{"created", k_now},
                                   {"layer",
                                    {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                     {"digest", Digest::of_bytes("absent").str()},
                                     {"size", 6},
                                     {"diffID", Digest::of_bytes("tar").str()}}}};
    ASSERT_TRUE(write_file_atomic(entries + key("y").encoded() + ".json", missing_blob.dump()));
    EXPECT_FALSE(*cache->lookup(key("y")));
}

TEST_F(LocalCacheTest, RecordedInputsComeBackForTheSameIdentity) {
    KeyInputs inputs{.parent = {"sha256:aa"}, .step = {{"instruction", "\"RUN\""}}, .build = "b",
                     .reads = {{"context:a", "1"}}, .base = "scratch"};
    ASSERT_TRUE(open()->record_inputs(key("step 3"), inputs));
    auto back = open()->previous_inputs(key("step 3"));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->key(), inputs.key());
    EXPECT_FALSE(open()->previous_inputs(key("step 4")));
}

TEST(KeyInputs, TheKeyCoversEverythingButTheBaseNote) {
    KeyInputs inputs{.parent = {"sha256:aa"}, .step = {{"argv", "[\"true\"]"}}, .build = "b",
                     .reads = {{"context:a", "1"}}, .base = "scratch"};
    KeyInputs other = inputs;
    other.base = "sha256:ff";
    EXPECT_EQ(inputs.key(), other.key()) << "the base is named for explanations; its layers are the parent";
    for (auto change : std::vector<std::function<void(KeyInputs&)>>{
             [](KeyInputs& k) { k.parent.push_back("sha256:bb"); }, [](KeyInputs& k) { k.step[0].second = "[]"; },
             [](KeyInputs& k) { k.build = "c"; }, [](KeyInputs& k) { k.reads["context:a"] = "2"; }}) {
        KeyInputs changed = inputs;
        change(changed);
        EXPECT_NE(changed.key(), inputs.key());
    }
}

TEST(KeyInputs, AMissSaysWhatChanged) {
    KeyInputs before{.parent = {"sha256:aa"},
                     .step = {{"argv", "[\"make\"]"}, {"environment", "[\"A=1\",\"B=2\",\"PATH=/bin\"]"}},
                     .build = "b",
                     .reads = {{"context:src/a.c", "1"}, {"context:src/b.c", "1"}},
                     .base = "sha256:base1"};
    KeyInputs now = before;
    now.step[1].second = "[\"A=1\",\"B=3\",\"C=4\",\"PATH=/bin\"]";
    EXPECT_EQ(now.difference_from(before), "ARG or ENV changed: B, C");
    now = before;
    now.reads["context:src/b.c"] = "2";
    now.reads.erase("context:src/a.c");
    EXPECT_EQ(now.difference_from(before), "what it reads changed: src/b.c, src/a.c (gone)");
    now = before;
    now.parent = {"sha256:cc"};
    EXPECT_EQ(now.difference_from(before), "the layers before it changed");
    now.base = "sha256:base2";
    EXPECT_EQ(now.difference_from(before), "the base image changed (sha256:base1 → sha256:base2)");
    now = before;
    now.step[0].second = "[\"make\",\"-j2\"]";
    EXPECT_EQ(now.difference_from(before), "its argv changed");
}

class TreeDigestTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-tree-digest-test-"));
        ASSERT_TRUE(make_directories(m_dir.path() + "/src/sub"));
        ASSERT_TRUE(write_file_atomic(m_dir.path() + "/src/a.c", "int a;\n"));
        ASSERT_TRUE(write_file_atomic(m_dir.path() + "/src/sub/b.c", "int b;\n"));
        ASSERT_EQ(::symlink("a.c", (m_dir.path() + "/src/link").c_str()), 0);
    }
    std::map<std::string, std::string> digests(const dockerfile::IgnoreMatcher* ignore = nullptr) {
        auto root = RootFs::open(m_dir.path());
        EXPECT_TRUE(root);
        std::map<std::string, std::string> out;
        auto done = digest_tree(*root, "src", ignore, false, "context:", out);
        EXPECT_TRUE(done) << done.error().message();
        return out;
    }
    TempDir m_dir;
};

TEST_F(TreeDigestTest, ContentModeAndLinkTargetsCountButMtimesDoNot) {
    auto first = digests();
    EXPECT_TRUE(first.contains("context:src/sub/b.c"));
    EXPECT_TRUE(first.contains("context:src/link"));
    timespec later[2] = {{2'000'000'000, 0}, {2'000'000'000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (m_dir.path() + "/src/a.c").c_str(), later, 0), 0);
    EXPECT_EQ(digests(), first) << "touching a file changes nothing";
    ASSERT_EQ(::chmod((m_dir.path() + "/src/a.c").c_str(), 0600), 0);
    EXPECT_NE(digests().at("context:src/a.c"), first.at("context:src/a.c"));
    ASSERT_TRUE(write_file_atomic(m_dir.path() + "/src/sub/b.c", "int b2;\n"));
    EXPECT_NE(digests().at("context:src/sub/b.c"), first.at("context:src/sub/b.c"));
}

TEST_F(TreeDigestTest, IgnoredFilesAreLeftOut) {
    auto ignore = dockerfile::IgnoreMatcher::from_patterns({"src/sub/b.c"});
    ASSERT_TRUE(ignore);
    auto with_ignore = digests(&*ignore);
    EXPECT_FALSE(with_ignore.contains("context:src/sub/b.c"));
    EXPECT_TRUE(with_ignore.contains("context:src/a.c"));
}

}  // namespace
}  // namespace kiln
