#include "builder/snapshot/extracted_layer_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "images/blob_store.hpp"
#include "tests/support/gzip_layer.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

// Real gzip layers in a blob store, extracted into a store in a directory of the test's own.
class ExtractedLayerStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-extracted-store-test-"));
        auto store = BlobStore::open(m_dir.path() + "/blobs");
        ASSERT_TRUE(store);
        m_blobs = std::make_unique<BlobStore>(std::move(*store));
    }
    LayerPtr make_layer(const std::string& tar) {
        auto layer = test::gzip_layer(*m_blobs, tar);
        EXPECT_TRUE(layer) << layer.error().message();
        return layer ? *layer : nullptr;
    }
    std::unique_ptr<ExtractedLayerStore> open() {
        auto store = ExtractedLayerStore::open(root(), "variant");
        EXPECT_TRUE(store) << store.error().message();
        return store ? std::move(*store) : nullptr;
    }
    std::string root() const { return m_dir.path() + "/extracted"; }
    std::string entry(const LayerPtr& layer) const { return root() + "/variant/" + layer->diff_id().encoded(); }
    // Makes `layer`'s entry look used `seconds_ago`.
    void used_ago(const LayerPtr& layer, int seconds_ago) {
        struct timespec times[2];
        times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - seconds_ago;
        times[0].tv_nsec = times[1].tv_nsec = 0;
        ASSERT_EQ(::utimensat(AT_FDCWD, (entry(layer) + "/entry.json").c_str(), times, 0), 0);
    }

    TempDir m_dir;
    std::unique_ptr<BlobStore> m_blobs;
};

TEST_F(ExtractedLayerStoreTest, ALayerIsExtractedOnceAndItsAssumptionsComeBackFromTheRecord) {
    // A whiteout in a directory the layer does not make: it takes that directory from the layers below.
    LayerPtr layer = make_layer(test::TestTar().file("etc/.wh.gone", "").file("app/x", "x\n").bytes());
    auto store = open();
    auto first = store->acquire(*layer, OwnershipFailure::error);
    ASSERT_TRUE(first && *first) << (first ? "" : first.error().message());
    EXPECT_EQ(read_file((*first)->tree + "/app/x").value_or(""), "x\n");
    EXPECT_EQ((*first)->assumptions.deleting_in, std::vector<std::string>{"etc"});

    auto again = open()->acquire(*layer, OwnershipFailure::error);
    ASSERT_TRUE(again && *again);
    EXPECT_EQ((*again)->tree, (*first)->tree);
    EXPECT_EQ((*again)->assumptions.deleting_in, std::vector<std::string>{"etc"});
}

TEST_F(ExtractedLayerStoreTest, ALayerWithHardlinksIntoTheLayersBelowIsNotKept) {
    LayerPtr layer = make_layer(test::TestTar().hardlink("bin/sh", "bin/busybox").bytes());
    auto kept = open()->acquire(*layer, OwnershipFailure::error);
    ASSERT_TRUE(kept) << kept.error().message();
    EXPECT_FALSE(*kept);
    EXPECT_FALSE(path_exists(entry(layer)));
    EXPECT_FALSE(path_exists(entry(layer) + ".partial"));
}

// A record that cannot be read is named in a warning, and the layer is extracted again in place of its entry.
TEST_F(ExtractedLayerStoreTest, AnEntryWithAHostileRecordIsReplaced) {
    LayerPtr layer = make_layer(test::TestTar().file("etc/.wh.gone", "").file("a", "a").bytes());
    ASSERT_TRUE(open()->acquire(*layer, OwnershipFailure::error));
    std::string record = entry(layer) + "/entry.json";
    for (const std::string& hostile :
         {std::string("[]"), std::string("{\"directory_paths\": 1, \"deleting_in\": [], \"needs_stack\": false}"),
          std::string("{\"directory_paths\": [\"a\\u0000b\"], \"deleting_in\": [], \"needs_stack\": false}"),
          std::string("{\"directory_paths\": [], \"deleting_in\": [], \"needs_stack\": \"no\"}"), std::string("{")}) {
        ASSERT_TRUE(write_file_atomic(record, hostile));
        test::LogCapture log;
        auto read = open()->acquire(*layer, OwnershipFailure::error);
        ASSERT_TRUE(read && *read) << hostile << ": " << (read ? "not kept" : read.error().message());
        EXPECT_EQ((*read)->assumptions.deleting_in, std::vector<std::string>{"etc"}) << hostile;
        EXPECT_NE(log.text().find(record), std::string::npos) << hostile << ": " << log.text();
        EXPECT_NE(log.text().find("extracting the layer again"), std::string::npos) << log.text();
    }
}

TEST_F(ExtractedLayerStoreTest, EvictionRemovesTheLeastRecentlyUsedEntriesNoOneHolds) {
    LayerPtr old_layer = make_layer(test::TestTar().file("old", std::string(10000, 'o')).bytes());
    LayerPtr held_layer = make_layer(test::TestTar().file("held", std::string(10000, 'h')).bytes());
    LayerPtr new_layer = make_layer(test::TestTar().file("new", std::string(10000, 'n')).bytes());
    for (const LayerPtr& layer : {old_layer, held_layer, new_layer}) ASSERT_TRUE(open()->acquire(*layer, OwnershipFailure::error));
    used_ago(held_layer, 300);  // the oldest, but held
    used_ago(old_layer, 200);
    used_ago(new_layer, 100);
    auto holder = open();
    ASSERT_TRUE(holder->acquire(*held_layer, OwnershipFailure::error));
    used_ago(held_layer, 300);

    auto evictor = open();
    std::uint64_t total = evictor->size();
    ASSERT_GT(total, 0u);
    // Room for two of the three: the held one stays, so the least recently used of the others goes.
    auto evicted = evictor->evict(total - 1);
    ASSERT_TRUE(evicted) << evicted.error().message();
    EXPECT_EQ(evicted->entries, 1u);
    EXPECT_TRUE(path_exists(entry(held_layer)));
    EXPECT_FALSE(path_exists(entry(old_layer)));
    EXPECT_TRUE(path_exists(entry(new_layer)));

    // Released, the held one goes first.
    holder->release();
    evicted = evictor->evict(evictor->size() - 1);
    ASSERT_TRUE(evicted);
    EXPECT_FALSE(path_exists(entry(held_layer)));
    EXPECT_TRUE(path_exists(entry(new_layer)));

    // An evicted layer is extracted again when it is next asked for.
    auto back = open()->acquire(*old_layer, OwnershipFailure::error);
    ASSERT_TRUE(back && *back);
    EXPECT_TRUE(path_exists((*back)->tree + "/old"));
}

// The detached keeper's work, run in this process: each handed blob is extracted into the store and removed;
// one whose bytes are not its digest's is removed and not kept.
TEST_F(ExtractedLayerStoreTest, TheKeeperExtractsEachHandedBlobAndRemovesIt) {
    LayerPtr good = make_layer(test::TestTar().file("kept", "k\n").bytes());
    LayerPtr forged = make_layer(test::TestTar().file("forged", "f\n").bytes());
    ASSERT_TRUE(open());
    std::string dir = root() + "/variant/";
    std::string good_blob = dir + good->diff_id().encoded() + ".blob-test";
    std::string forged_blob = dir + forged->diff_id().encoded() + ".blob-test";
    ASSERT_EQ(::link(good->file_path().c_str(), good_blob.c_str()), 0);
    ASSERT_TRUE(write_file_atomic(forged_blob, "not the layer's bytes"));
    std::vector<std::string> args = {root(), "variant", "error", "0"};
    for (const auto& [layer, blob] : {std::pair(good, good_blob), std::pair(forged, forged_blob)}) {
        args.push_back(layer->descriptor().media_type);
        args.push_back(layer->descriptor().digest.str());
        args.push_back(layer->diff_id().str());
        args.push_back(blob);
    }
    EXPECT_EQ(keep_layers(args), 1);
    EXPECT_EQ(read_file(entry(good) + "/tree/kept").value_or(""), "k\n");
    EXPECT_FALSE(path_exists(entry(forged)));
    EXPECT_FALSE(path_exists(good_blob));
    EXPECT_FALSE(path_exists(forged_blob));
    EXPECT_EQ(keep_layers({root(), "../elsewhere", "error", "0"}), 1);
    EXPECT_EQ(keep_layers({root(), "variant", "error"}), 2);
}

TEST_F(ExtractedLayerStoreTest, ADirectoryOthersMayWriteIsRefused) {
    ASSERT_TRUE(make_directories(root() + "/variant"));
    ASSERT_EQ(::chmod((root() + "/variant").c_str(), 0777), 0);
    auto store = ExtractedLayerStore::open(root(), "variant");
    ASSERT_FALSE(store);
    EXPECT_NE(store.error().message().find("may be written by other users"), std::string::npos) << store.error().message();
}

TEST_F(ExtractedLayerStoreTest, TreesMadeUnderAnotherOwnershipPolicyAreAnotherVariant) {
    EXPECT_NE(extracted_layer_variant(OwnershipFailure::error), extracted_layer_variant(OwnershipFailure::warn_once));
    EXPECT_EQ(extracted_layer_variant(OwnershipFailure::error), extracted_layer_variant(OwnershipFailure::error));
}

}  // namespace
}  // namespace kiln
