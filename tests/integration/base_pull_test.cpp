// Base images of many layers, pulled from a real registry several layers at a time: every layer arrives,
// layers are applied in manifest order, and a bad layer is reported by registry, repository and digest.

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

constexpr int k_parent_layers = 6;

class BasePullTest : public RegistryBuildTest {
protected:
    // Pushes `name`: the busybox base plus k_parent_layers COPY layers. Layer i adds /layers/own-i and
    // rewrites /layers/shared, so only the last layer's content survives when layers are applied in order.
    void push_parent(const std::string& name) {
        std::string dockerfile = "ARG BASE\nFROM $BASE\n";
        for (int i = 1; i <= k_parent_layers; ++i) dockerfile += "COPY d" + std::to_string(i) + "/ /layers/\n";
        std::string context = context_with(dockerfile);
        for (int i = 1; i <= k_parent_layers; ++i) {
            std::string dir = context + "/d" + std::to_string(i);
            ASSERT_TRUE(make_directories(dir));
            // Big enough that the downloads overlap rather than finish one by one.
            std::string own(2 << 20, static_cast<char>('a' + i));
            ASSERT_TRUE(write_file_atomic(dir + "/own-" + std::to_string(i), own));
            ASSERT_TRUE(write_file_atomic(dir + "/shared", std::to_string(i) + "\n"));
        }
        KilnRun run = run_kiln({"build", "--context", context, "--build-arg", "BASE=" + base(), "--insecure",
                                "--insecure-pull", "--destination", reference(name)});
        ASSERT_EQ(run.exit_code, 0) << run.output;
    }

    // Builds FROM `parent` with a RUN that reads the pulled tree, and pushes the result as `name`.
    KilnRun build_child(const std::string& parent, const std::string& name) {
        std::string context = m_dir.path() + "/child-" + name.substr(0, name.find(':'));
        EXPECT_TRUE(make_directories(context));
        EXPECT_TRUE(write_file_atomic(context + "/Dockerfile",
                                      "FROM " + reference(parent) +
                                          "\nRUN cat /layers/shared > /seen && ls /layers > /listing\n"));
        return run_kiln({"build", "--context", context, "--insecure", "--insecure-pull", "--destination",
                         reference(name)});
    }

    std::vector<std::string> layer_digests(const std::string& name) {
        auto inspected = inspect_remote(reference(name));
        EXPECT_TRUE(inspected) << (inspected ? "" : inspected.error().message());
        std::vector<std::string> digests;
        if (inspected)
            for (const auto& layer : (*inspected)["Layers"]) digests.push_back(layer.get<std::string>());
        return digests;
    }
};

TEST_F(BasePullTest, EveryLayerOfAManyLayerBaseIsPulledAndAppliedInOrder) {
    push_parent("pull-parent:1");
    ASSERT_EQ(layer_digests("pull-parent:1").size(), static_cast<size_t>(k_parent_layers + 1));
    KilnRun child = build_child("pull-parent:1", "pull-child:1");
    ASSERT_EQ(child.exit_code, 0) << child.output;

    std::string layout = m_dir.path() + "/layout";
    ASSERT_TRUE(pull_to_layout(reference("pull-child:1"), layout, "x"));
    ASSERT_TRUE(unpack_layout(layout, "x", m_dir.path() + "/bundle"));
    std::string root = m_dir.path() + "/bundle/rootfs/";
    auto seen = read_file(root + "seen", 1 << 10);
    ASSERT_TRUE(seen) << seen.error().message();
    EXPECT_EQ(*seen, std::to_string(k_parent_layers) + "\n") << "the last layer's /layers/shared must win";
    for (int i = 1; i <= k_parent_layers; ++i) {
        auto own = read_file(root + "layers/own-" + std::to_string(i), 4 << 20);
        ASSERT_TRUE(own) << own.error().message();
        EXPECT_TRUE(*own == std::string(2 << 20, static_cast<char>('a' + i))) << "layer " << i;
    }
}

TEST_F(BasePullTest, ACorruptLayerIsNamedWithRegistryRepositoryAndDigest) {
    push_parent("pull-corrupt:1");
    std::vector<std::string> digests = layer_digests("pull-corrupt:1");
    ASSERT_EQ(digests.size(), static_cast<size_t>(k_parent_layers + 1));
    // Same size, different bytes: only the digest check can tell.
    const std::string& victim = digests[3];
    std::string path = registry().blob_data_path(victim);
    auto bytes = read_file(path, 64 << 20);
    ASSERT_TRUE(bytes) << bytes.error().message();
    std::string corrupt = *bytes;
    corrupt[corrupt.size() / 2] ^= 0x55;
    ASSERT_TRUE(write_file_atomic(path, corrupt));

    KilnRun child = build_child("pull-corrupt:1", "pull-corrupt-child:1");
    EXPECT_NE(child.exit_code, 0) << child.output;
    EXPECT_NE(child.output.find(victim), std::string::npos) << child.output;
    EXPECT_NE(child.output.find(registry().host_port()), std::string::npos) << child.output;
    EXPECT_NE(child.output.find("pull-corrupt"), std::string::npos) << child.output;
}

}  // namespace
}  // namespace kiln::test
