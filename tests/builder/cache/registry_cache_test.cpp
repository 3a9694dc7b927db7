// RegistryLayerCache against a real registry: entries as another pod finds them, hostile and expired entries,
// lazy layers, and a registry that goes away.

#include "builder/cache/registry_cache.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>

#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "images/manifest.hpp"
#include "layers/compression.hpp"
#include "tests/support/gzip_layer.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

constexpr std::int64_t k_now = 1'800'000'000;

class RegistryLayerCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto reason = test::RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-registry-cache-test-"));
        auto registry = test::RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        m_writer_store = open_store("writer");
        m_reader_store = open_store("reader");
        RegistryClientOptions options;
        options.plain_http.add(m_registry->host_port());
        options.retry.attempts = 1;
        m_client = std::make_unique<RegistryClient>(std::move(options));
        auto layer = test::gzip_layer(*m_writer_store, test::TestTar().file("app/run1", "1234\n").bytes());
        ASSERT_TRUE(layer) << layer.error().message();
        m_layer = *layer;
    }

    std::unique_ptr<BlobStore> open_store(const std::string& name) {
        auto store = BlobStore::open(m_dir.path() + "/" + name);
        EXPECT_TRUE(store);
        return std::make_unique<BlobStore>(std::move(*store));
    }
    Reference repository() const { return *Reference::parse(m_registry->host_port() + "/app/cache"); }
    // A cache as one build (one pod) sees it; `store` is that build's own.
    std::unique_ptr<RegistryLayerCache> open(const BlobStore& store, std::int64_t now = k_now,
                                             std::chrono::seconds ttl = std::chrono::seconds(3600), size_t writers = 1) {
        return std::make_unique<RegistryLayerCache>(
            *m_client, repository(), store,
            RegistryCacheSettings{.ttl = ttl, .now = now, .push = true, .platform = host_platform(), .writers = writers});
    }
    Digest key(const std::string& name) const { return Digest::of_bytes(name); }
    // Stores an entry from the writer's build and waits for its upload.
    void store(const std::string& name, const LayerPtr& layer, std::int64_t now = k_now) {
        auto cache = open(*m_writer_store, now);
        ASSERT_TRUE(cache->store(key(name), layer));
        cache->flush();
    }
    // Replaces the entry for `name` by a manifest of our own making.
    void put_manifest(const std::string& name, const Manifest& manifest) {
        auto reference = repository().with_tag(key(name).encoded());
        ASSERT_TRUE(reference);
        ASSERT_TRUE(m_client->push_manifest(*reference, "application/vnd.oci.image.manifest.v1+json", manifest.serialize()));
    }
    Manifest stored_manifest(const std::string& name) {
        auto fetched = m_client->get_manifest(*repository().with_tag(key(name).encoded()));
        EXPECT_TRUE(fetched);
        return *Manifest::parse(fetched->bytes);
    }

    TempDir m_dir;
    std::unique_ptr<test::RegistryProcess> m_registry;
    std::unique_ptr<BlobStore> m_writer_store;
    std::unique_ptr<BlobStore> m_reader_store;
    std::unique_ptr<RegistryClient> m_client;
    LayerPtr m_layer;
};

TEST_F(RegistryLayerCacheTest, AnotherBuildFindsTheEntryAndFetchesItsLayerOnlyWhenRead) {
    store("run", m_layer);
    auto hit = open(*m_reader_store)->lookup(key("run"));
    ASSERT_TRUE(hit) << hit.error().message();
    ASSERT_TRUE(*hit);
    EXPECT_STREQ((*hit)->source, "registry");
    ASSERT_TRUE((*hit)->layer);
    EXPECT_EQ((*hit)->layer->descriptor(), m_layer->descriptor());
    EXPECT_EQ((*hit)->layer->diff_id(), m_layer->diff_id());
    EXPECT_FALSE(m_reader_store->contains(m_layer->descriptor().digest)) << "a hit downloaded its layer";
    auto blob = (*hit)->layer->open_blob();
    ASSERT_TRUE(blob) << blob.error().message();
    EXPECT_TRUE(m_reader_store->contains(m_layer->descriptor().digest));
}

// Entries go up several at once (--transfer-jobs): every one lands, and flush() waits for them all.
TEST_F(RegistryLayerCacheTest, EntriesWrittenAtOnceAllLand) {
    {
        auto cache = open(*m_writer_store, k_now, std::chrono::seconds(3600), 3);
        for (int i = 0; i < 8; ++i) {
            ASSERT_TRUE(cache->store(key(str_cat("step ", i)), i % 2 ? m_layer : nullptr));
            ASSERT_TRUE(cache->record_inputs(key(str_cat("identity ", i)), KeyInputs{.build = str_cat("build ", i)}));
        }
        cache->flush();
    }
    auto reader = open(*m_reader_store);
    for (int i = 0; i < 8; ++i) {
        auto hit = reader->lookup(key(str_cat("step ", i)));
        ASSERT_TRUE(hit) << hit.error().message();
        ASSERT_TRUE(*hit) << "entry " << i << " is missing";
        EXPECT_EQ(static_cast<bool>((*hit)->layer), i % 2 == 1);
        EXPECT_TRUE(reader->previous_inputs(key(str_cat("identity ", i)))) << "record " << i << " is missing";
    }
}

TEST_F(RegistryLayerCacheTest, AnEntryWithoutALayerIsAHitWithNone) {
    store("workdir", nullptr);
    auto hit = open(*m_reader_store)->lookup(key("workdir"));
    ASSERT_TRUE(hit && *hit);
    EXPECT_EQ((*hit)->layer, nullptr);
}

TEST_F(RegistryLayerCacheTest, AMissingEntryIsAMiss) {
    auto hit = open(*m_reader_store)->lookup(key("never stored"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
}

TEST_F(RegistryLayerCacheTest, AnEntryPastItsTtlIsAMiss) {
    store("old", m_layer, k_now - 7200);
    auto hit = open(*m_reader_store, k_now, std::chrono::seconds(3600))->lookup(key("old"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
    hit = open(*m_reader_store, k_now, std::chrono::seconds(86400))->lookup(key("old"));
    ASSERT_TRUE(hit);
    EXPECT_TRUE(*hit);
}

TEST_F(RegistryLayerCacheTest, HostileEntriesAreMisses) {
    store("run", m_layer);
    Manifest good = stored_manifest("run");
    std::vector<std::pair<std::string, Manifest>> hostile;
    Manifest no_created = good;
    no_created.annotations.erase("dev.kiln.cache.created");
    hostile.emplace_back("no created time", no_created);
    Manifest bad_created = good;
    bad_created.annotations["dev.kiln.cache.created"] = "-5";
    hostile.emplace_back("a negative created time", bad_created);
    Manifest no_diff_id = good;
    no_diff_id.annotations.erase("dev.kiln.cache.diff-id");
    hostile.emplace_back("no diffID", no_diff_id);
    Manifest two_layers = good;
    two_layers.layers.push_back(good.layers.front());
    hostile.emplace_back("two layers", two_layers);
    Manifest not_a_layer = good;
    not_a_layer.layers.front().media_type = "application/vnd.oci.image.config.v1+json";
    hostile.emplace_back("a config as its layer", not_a_layer);
    for (const auto& [what, manifest] : hostile) {
        put_manifest("run", manifest);
        auto hit = open(*m_reader_store)->lookup(key("run"));
        ASSERT_TRUE(hit) << what;
        EXPECT_FALSE(*hit) << what;
    }
}

TEST_F(RegistryLayerCacheTest, ALayerThatIsNotTheDiffIdItsEntryClaimsFailsWhenRead) {
    store("run", m_layer);
    Manifest lying = stored_manifest("run");
    lying.annotations["dev.kiln.cache.diff-id"] = Digest::of_bytes("other content").str();
    put_manifest("run", lying);
    auto hit = open(*m_reader_store)->lookup(key("run"));
    ASSERT_TRUE(hit && *hit) << "the lie shows only in the bytes";
    auto blob = (*hit)->layer->open_blob();
    ASSERT_FALSE(blob);
    EXPECT_NE(blob.error().message().find("diffID"), std::string::npos) << blob.error().message();
}

TEST_F(RegistryLayerCacheTest, AnEntryWhoseLayerIsGoneFromTheRegistryIsAMiss) {
    store("run", m_layer);
    ASSERT_EQ(::unlink(m_registry->blob_data_path(m_layer->descriptor().digest.str()).c_str()), 0);
    auto hit = open(*m_reader_store)->lookup(key("run"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
}

TEST(CacheExpiryTest, OldEntriesExpireAndNoValueOverflows) {
    using std::chrono::seconds;
    EXPECT_FALSE(expired(1000, seconds(100), 1050));
    EXPECT_TRUE(expired(1000, seconds(100), 1101));
    EXPECT_FALSE(expired(2000, seconds(100), 1000)) << "an entry from a clock that runs ahead is not expired";
    EXPECT_FALSE(expired(INT64_MAX, seconds(INT64_MAX), 1000));
    EXPECT_TRUE(expired(INT64_MIN, seconds(100), 1000));
    EXPECT_FALSE(expired(0, seconds(INT64_MAX), INT64_MAX));
}

TEST_F(RegistryLayerCacheTest, WhatAStepReadIsFoundByTheNextBuild) {
    KeyInputs inputs;
    inputs.step = {{"instruction", "\"COPY\""}};
    inputs.reads = {{"context:src/a.txt", "sha256:aa"}};
    {
        auto cache = open(*m_writer_store);
        ASSERT_TRUE(cache->record_inputs(key("identity"), inputs));
        cache->flush();
    }
    auto found = open(*m_reader_store)->previous_inputs(key("identity"));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->reads, inputs.reads);
    EXPECT_FALSE(open(*m_reader_store)->previous_inputs(key("other identity")));
}

TEST_F(RegistryLayerCacheTest, AStoppedRegistryTurnsTheCacheOffWithoutFailingAnything) {
    store("run", m_layer);
    auto cache = open(*m_reader_store);
    m_registry.reset();
    auto hit = cache->lookup(key("run"));
    ASSERT_TRUE(hit);
    EXPECT_FALSE(*hit);
    EXPECT_TRUE(cache->store(key("later"), m_layer));
    cache->flush();
    EXPECT_FALSE(cache->previous_inputs(key("identity")));
}

TEST_F(RegistryLayerCacheTest, AStoredLayerIsAnOriginForAPushToTheSameRegistry) {
    auto cache = open(*m_writer_store);
    ASSERT_TRUE(cache->store(key("run"), m_layer));
    cache->flush();
    auto origins = cache->blob_origins();
    ASSERT_TRUE(origins.contains(m_layer->descriptor().digest.str()));
    EXPECT_EQ(origins.at(m_layer->descriptor().digest.str()).name(), repository().name());
}

}  // namespace
}  // namespace kiln
