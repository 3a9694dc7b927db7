// RegistryImageSource against a real registry process and a real OCI layout: the boundary that
// tests/builder/fakes.hpp stands in for in the orchestration tests.

#include "builder/sources/image_source.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "common/temp_dir.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

namespace kiln {
namespace {

class ImageSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto reason = test::RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
        if (::access("/usr/bin/skopeo", X_OK) != 0) GTEST_SKIP() << "skopeo is not installed (scripts/setup installs it)";
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-image-source-test-"));
        auto registry = test::RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        std::vector<std::string> layers = {test::TestTar().file("etc/one", "1\n").bytes(),
                                           test::TestTar().file("etc/two", "2\n").bytes()};
        auto image = test::write_test_image(m_dir.path() + "/layout", "v1", layers);
        ASSERT_TRUE(image) << image.error().message();
        m_image = *image;
        ASSERT_TRUE(test::push_layout(m_dir.path() + "/layout", "v1", name("team/base:v1")));
        auto store = BlobStore::open(m_dir.path() + "/store");
        ASSERT_TRUE(store) << store.error().message();
        m_store = std::make_unique<BlobStore>(std::move(*store));
        RegistryClientOptions options;
        options.plain_http.add(m_registry->host_port());
        m_client = std::make_unique<RegistryClient>(std::move(options));
    }

    std::string name(const std::string& path) const { return m_registry->host_port() + "/" + path; }

    RegistryImageSource source(ImageSourceSettings settings = {}) {
        return RegistryImageSource(*m_client, RegistryRoutes{}, *m_store, std::move(settings));
    }

    TempDir m_dir;
    std::unique_ptr<test::RegistryProcess> m_registry;
    test::TestImage m_image;
    std::unique_ptr<BlobStore> m_store;
    std::unique_ptr<RegistryClient> m_client;
};

TEST_F(ImageSourceTest, ResolvingFetchesNoLayerAndKeepsTheManifestDigest) {
    RegistryImageSource images = source();
    auto resolved = images.resolve(name("team/base:v1"), host_platform());
    ASSERT_TRUE(resolved) << resolved.error().message();
    EXPECT_EQ(resolved->manifest_digest.str(), m_image.manifest_digest);
    EXPECT_EQ(resolved->resolved, name("team/base:v1@") + m_image.manifest_digest);
    ASSERT_EQ(resolved->image.layers().size(), 2u);
    for (const LayerPtr& layer : resolved->image.layers()) EXPECT_FALSE(m_store->contains(layer->descriptor().digest));
}

TEST_F(ImageSourceTest, FetchingFromSeveralThreadsStoresEachVerifiedLayerAndRecordsItsOrigin) {
    RegistryImageSource images = source();
    auto resolved = images.resolve(name("team/base:v1"), host_platform());
    ASSERT_TRUE(resolved) << resolved.error().message();
    std::vector<Status> results(4);
    std::vector<std::thread> threads;
    for (Status& result : results) threads.emplace_back([&] { result = images.fetch_layers(*resolved); });
    for (std::thread& thread : threads) thread.join();
    for (const Status& result : results) ASSERT_TRUE(result) << result.error().message();
    std::map<std::string, Reference> origins = images.blob_origins();
    for (const std::string& digest : m_image.layer_digests) {
        EXPECT_TRUE(m_store->contains(Digest::parse(digest).value())) << digest;
        ASSERT_TRUE(origins.contains(digest)) << digest;
        EXPECT_EQ(origins.at(digest).name(), name("team/base"));
    }
}

TEST_F(ImageSourceTest, ABuildContextNameResolvesToItsLayoutAndImportsItsBlobs) {
    RegistryImageSource images =
        source(ImageSourceSettings{.build_contexts = {{"base", "oci-layout://" + m_dir.path() + "/layout:v1"}}});
    auto resolved = images.resolve("base", host_platform());
    ASSERT_TRUE(resolved) << resolved.error().message();
    EXPECT_EQ(resolved->manifest_digest.str(), m_image.manifest_digest);
    ASSERT_TRUE(images.fetch_layers(*resolved));
    for (const std::string& digest : m_image.layer_digests) EXPECT_TRUE(m_store->contains(Digest::parse(digest).value()));
    EXPECT_TRUE(images.blob_origins().empty()) << "a layout's blobs come from no registry";
}

TEST_F(ImageSourceTest, AMissingImageNamesTheReference) {
    RegistryImageSource images = source();
    auto resolved = images.resolve(name("team/absent:v1"), host_platform());
    ASSERT_FALSE(resolved);
    EXPECT_NE(resolved.error().message().find("team/absent"), std::string::npos) << resolved.error().message();
}

}  // namespace
}  // namespace kiln
