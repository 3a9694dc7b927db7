// Base layers kept extracted in <--cache-dir>/extracted across builds (issue 14), by the kiln binary with the
// overlay snapshotter: a later build stacks them without extracting; two builds at once extract a layer once;
// a build killed while it extracts leaves nothing a later build uses; eviction goes by --cache-dir-max and
// least recent use; `kiln warm --extract` fills the store for builds.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <utility>
#include <filesystem>
#include <future>
#include <thread>

#include "common/process.hpp"
#include "tests/integration/run_build_fixture.hpp"
#include "tests/support/random_bytes.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// Files in the base's big layer: enough that extracting it takes a while on a disk.
constexpr int k_many_files = 3000;

// The stage counts the big layer's files: a tree missing any would show.
const char* const k_counting_dockerfile = "FROM many\nRUN find /many -type f | wc -l > /count\n";

class ExtractedLayersTest : public RunBuildTest {
protected:
    void SetUp() override {
        RunBuildTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        m_many_layout = case_path("many-layout");
        std::vector<std::string> layers = base_layers();
        TestTar many;
        many.dir("many");
        for (int d = 0; d < 30; ++d) {
            many.dir(str_cat("many/d", d));
            for (int f = 0; f < k_many_files / 30; ++f) many.file(str_cat("many/d", d, "/f", f), str_cat(d, "/", f, "\n"));
        }
        layers.push_back(many.bytes());
        auto image = write_test_image(m_many_layout, "latest", layers);
        ASSERT_TRUE(image) << image.error().message();
        m_many_layer_short = image->layer_digests.back().substr(0, 19);  // "sha256:" and 12 digits
    }

    std::vector<std::string> args(const std::string& cache, std::vector<std::string> more = {}) const {
        std::vector<std::string> all = {"--build-context", "many=oci-layout://" + m_many_layout, "--cache-dir", cache,
                                        "--snapshotter=overlay", "--work-dir", case_path("work")};
        all.insert(all.end(), more.begin(), more.end());
        return all;
    }
    // The store's one variant directory below <cache>/extracted ("" when there is none).
    static std::string store_dir(const std::string& cache) {
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(cache + "/extracted", error))
            if (entry.is_directory()) return entry.path().string();
        return "";
    }
    // The store's entries: diffID hex names, and anything else (locks aside) under its own name.
    static std::vector<std::string> store_entries(const std::string& cache) {
        std::vector<std::string> names;
        std::string dir = store_dir(cache);
        std::error_code error;
        if (!dir.empty())
            for (const auto& entry : fs::directory_iterator(dir, error))
                if (std::string name = entry.path().filename().string();
                    !name.ends_with(".lock") && !name.starts_with("kiln-trash-"))
                    names.push_back(name);
        std::sort(names.begin(), names.end());
        return names;
    }
    static size_t count_of(const std::string& text, const std::string& what) {
        size_t count = 0;
        for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
        return count;
    }
    void expect_whole_count() { EXPECT_EQ(content_of("count"), str_cat(k_many_files, "\n")); }
    // Waits (a minute at most) until the background keeper is done: `entries` entries in the store and no
    // partial extraction. Returns the entries. (A killed keeper's handed blob stays until it is hours old.)
    static std::vector<std::string> wait_for_store(const std::string& cache, size_t entries) {
        std::vector<std::string> names;
        for (int i = 0; i < 600; ++i) {
            names = store_entries(cache);
            std::erase_if(names, [](const std::string& n) { return n.find(".blob-") != std::string::npos; });
            bool settled = names.size() == entries && std::all_of(names.begin(), names.end(), [](const std::string& n) {
                               return n.find(".partial") == std::string::npos;
                           });
            if (settled) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return names;
    }
    static std::uint64_t recorded_size(const std::string& cache) {
        std::uint64_t total = 0;
        for (const std::string& name : store_entries(cache)) {
            auto record = nlohmann::json::parse(read_file(store_dir(cache) + "/" + name + "/entry.json").value_or("{}"));
            total += record.value("size", std::uint64_t{0});
        }
        return total;
    }

    std::string m_many_layout;
    std::string m_many_layer_short;
};

// The first build extracts its base the fastest way and keeps it in the background; a later one stacks it.
TEST_F(ExtractedLayersTest, ALaterBuildStacksTheKeptLayersAndExtractsNothing) {
    std::string cache = case_path("cache");
    KilnRun first = build_ok(k_counting_dockerfile, args(cache));
    EXPECT_NE(first.output.find("extracted layers: keeping 2 layer(s) in "), std::string::npos) << first.output;
    expect_whole_count();
    EXPECT_EQ(wait_for_store(cache, 2).size(), 2u);
    KilnRun second = build_ok(k_counting_dockerfile, args(cache));
    EXPECT_EQ(second.output.find("extracted layers: keeping"), std::string::npos) << second.output;
    EXPECT_NE(second.output.find("extracted layers: layer " + m_many_layer_short + " is already extracted"),
              std::string::npos)
        << second.output;
    expect_whole_count();
}

TEST_F(ExtractedLayersTest, WithoutACacheDirectoryNothingIsKept) {
    build_ok(k_counting_dockerfile, {"--build-context", "many=oci-layout://" + m_many_layout, "--snapshotter=overlay",
                                     "--work-dir", case_path("work")},
             {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + case_path("home")});
    expect_whole_count();
    EXPECT_FALSE(path_exists(case_path("home/.cache/kiln/extracted")));
}

TEST_F(ExtractedLayersTest, TwoBuildsAtOnceExtractEachLayerOnceAndBothSucceed) {
    std::string cache = case_path("cache");
    ASSERT_TRUE(write_file_atomic(context_path("Dockerfile"), k_counting_dockerfile));
    auto build_into = [&](const std::string& layout) {
        std::vector<std::string> all = {"build", "--context", context_path(""), "--no-push", "--oci-layout-path",
                                        case_path(layout)};
        for (const std::vector<std::string>& more : {fixture_args(), args(cache)}) all.insert(all.end(), more.begin(), more.end());
        return run_kiln(all);
    };
    auto first = std::async(std::launch::async, build_into, "layout-a");
    auto second = std::async(std::launch::async, build_into, "layout-b");
    KilnRun a = first.get();
    KilnRun b = second.get();
    ASSERT_EQ(a.exit_code, 0) << a.output;
    ASSERT_EQ(b.exit_code, 0) << b.output;
    // Both hand the base to a keeper; the second keeper finds each layer kept by the first.
    for (const std::string& name : wait_for_store(cache, 2)) EXPECT_EQ(name.size(), 64u) << name << " left in the store";
    for (const char* layout : {"layout-a", "layout-b"}) {
        std::string bundle = case_path(str_cat("bundle-", layout));
        ASSERT_TRUE(unpack_layout(case_path(layout), "latest", bundle));
        EXPECT_EQ(read_file(bundle + "/rootfs/count").value_or(""), str_cat(k_many_files, "\n")) << layout;
    }
}

// kill -9 while the big layer is being extracted into the store (by the keeper a build left): its partial
// directory stays, a build does not use it, and that build's keeper removes it and keeps the layer whole.
TEST_F(ExtractedLayersTest, ALayerHalfExtractedByAKilledKeeperIsNeverUsed) {
    std::string cache = case_path("cache");
    // Watched while the build runs: the keeper starts as the build ends, before the test has unpacked its image.
    auto first = std::async(std::launch::async, [&] { return build(k_counting_dockerfile, args(cache)); });
    // Once the partial tree holds some of the big layer's directories, and before it is renamed into place.
    std::string partial;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (partial.empty() && std::chrono::steady_clock::now() < deadline) {
        std::string dir = store_dir(cache);
        std::error_code error;
        if (!dir.empty())
            for (const auto& entry : fs::directory_iterator(dir, error))
                if (entry.path().string().ends_with(".partial") && fs::exists(entry.path() / "tree/many/d2", error))
                    partial = entry.path().string();
        if (partial.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    // The keeper of this test's store, and no other process, by pid.
    auto keepers = run_process({"pgrep", "-f", "internal-keep-layers " + cache + "/extracted "});
    ASSERT_TRUE(keepers);
    for (const std::string& pid : split(keepers->stdout_bytes, '\n')) {
        std::uint64_t number = 0;
        if (parse_uint64(pid, number)) ::kill(static_cast<pid_t>(number), SIGKILL);
    }
    KilnRun built = first.get();
    ASSERT_EQ(built.exit_code, 0) << built.output;
    ASSERT_NE(built.output.find("extracted layers: keeping"), std::string::npos) << built.output;
    ASSERT_FALSE(partial.empty()) << "the keeper never extracted the big layer into the store";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(path_exists(partial)) << "the extraction finished before the kill";
    std::string whole = partial.substr(0, partial.size() - std::string(".partial").size());
    ASSERT_FALSE(path_exists(whole)) << "a half-extracted layer was renamed into place";

    KilnRun next = build_ok(k_counting_dockerfile, args(cache));
    EXPECT_EQ(next.output.find("extracted layers: layer " + m_many_layer_short + " is already extracted"), std::string::npos)
        << next.output;
    EXPECT_NE(next.output.find("extracted layers: keeping 1 layer(s)"), std::string::npos) << next.output;
    expect_whole_count();
    wait_for_store(cache, 2);
    EXPECT_FALSE(path_exists(partial));
    EXPECT_TRUE(path_exists(whole));
}

// Two bases whose layers, kept, exceed --cache-dir-max: keeping the second's evicts what only the first used;
// what a build stacks is never evicted under it; the evicted layer is extracted again when needed.
TEST_F(ExtractedLayersTest, PastCacheDirMaxTheLeastRecentlyUsedLayersNoBuildHoldsAreEvicted) {
    std::string cache = case_path("cache");
    std::string other_layout = case_path("other-layout");
    std::vector<std::string> layers = base_layers();
    layers.push_back(TestTar().dir("other").file("other/file", "other\n").bytes());
    auto other = write_test_image(other_layout, "latest", layers);
    ASSERT_TRUE(other) << other.error().message();

    build_ok(k_counting_dockerfile, args(cache));
    ASSERT_EQ(wait_for_store(cache, 2).size(), 2u);
    std::string store = store_dir(cache);
    std::string busybox_entry = store + "/" + store_entries(cache)[0];
    std::string many_entry = store + "/" + store_entries(cache)[1];
    if (!path_exists(many_entry + "/tree/many")) std::swap(busybox_entry, many_entry);
    std::string max = str_cat("--cache-dir-max=", recorded_size(cache));

    // Room for the two layers there are: the build that stacks busybox's and keeps the other layer makes three,
    // and the one that only the first build used goes.
    KilnRun second = build_ok("FROM other\nRUN cat /other/file > /copied\n",
                              args(cache, {max, "--build-context", "other=oci-layout://" + other_layout}));
    EXPECT_EQ(content_of("copied"), "other\n");
    EXPECT_EQ(second.output.find("evicted"), std::string::npos) << "a layer in use was evicted:\n" << second.output;
    std::vector<std::string> left = wait_for_store(cache, 2);
    EXPECT_EQ(left.size(), 2u);
    EXPECT_FALSE(path_exists(many_entry));
    EXPECT_TRUE(path_exists(busybox_entry));
    EXPECT_EQ(std::count_if(left.begin(), left.end(), [&](const std::string& name) {
                  return path_exists(store + "/" + name + "/tree/other/file");
              }),
              1);

    // The evicted layer is extracted again, and kept again, when a build needs it.
    KilnRun third = build_ok(k_counting_dockerfile, args(cache));
    EXPECT_NE(third.output.find("extracted layers: keeping 1 layer(s)"), std::string::npos) << third.output;
    expect_whole_count();
}

TEST_F(ExtractedLayersTest, WarmExtractFillsTheStoreThatBuildsStack) {
    std::string cache = case_path("cache");
    // warm reads registries: the layout is served by skopeo's push to a registry of the test's own.
    auto registry = RegistryProcess::start();
    ASSERT_TRUE(registry) << registry.error().message();
    std::string image = (*registry)->host_port() + "/many:1";
    ASSERT_TRUE(push_layout(m_many_layout, "latest", image));
    KilnRun warmed = run_kiln({"warm", "--cache-dir", cache, "--insecure", "--image", image, "--extract"});
    ASSERT_EQ(warmed.exit_code, 0) << warmed.output;
    EXPECT_EQ(count_of(warmed.output, "extracted layers: kept layer "), 2u) << warmed.output;

    KilnRun built = build_ok("ARG IMAGE\nFROM $IMAGE\nRUN find /many -type f | wc -l > /count\n",
                             args(cache, {"--insecure-pull", "--build-arg", "IMAGE=" + image}));
    EXPECT_EQ(count_of(built.output, "extracted layers: kept layer "), 0u) << built.output;
    EXPECT_NE(built.output.find("extracted layers: layer " + m_many_layer_short + " is already extracted"),
              std::string::npos)
        << built.output;
    expect_whole_count();

    // Pushed to the base's registry, which mounts the base's blobs: the layers kept extracted are not fetched at
    // all, neither from the warmed blobs nor from the registry. (The layout above needed their bytes.)
    std::vector<std::string> push = {"build", "--context", context_path(""), "--destination",
                                     (*registry)->host_port() + "/built:1", "--insecure"};
    for (const std::vector<std::string>& more : {fixture_args(), args(cache, {"--insecure-pull", "--build-arg", "IMAGE=" + image})})
        push.insert(push.end(), more.begin(), more.end());
    KilnRun pushed = run_kiln(push);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
    EXPECT_EQ(pushed.output.find("from the warmed cache"), std::string::npos) << pushed.output;
    EXPECT_EQ(pushed.output.find("pulled"), std::string::npos) << pushed.output;
}

// The store's trees cannot be checked against a digest each time: a directory others may write is not used.
TEST_F(ExtractedLayersTest, AStoreOthersMayWriteIsNotUsed) {
    std::string cache = case_path("cache");
    ASSERT_TRUE(make_directories(cache + "/extracted"));
    ASSERT_EQ(::chmod((cache + "/extracted").c_str(), 0777), 0);
    KilnRun built = build_ok(k_counting_dockerfile, args(cache));
    EXPECT_NE(built.output.find("base layers are not kept extracted: " + cache + "/extracted may be written by other users"),
              std::string::npos)
        << built.output;
    expect_whole_count();
    EXPECT_EQ(store_entries(cache), std::vector<std::string>{});
}

// A memory cgroup of the test's own below this process's, limited to `limit` bytes: cgroup v1's memory
// controller (this machine) or v2 with the memory controller delegated. Removed on destruction.
class MemoryCgroup {
public:
    static Result<MemoryCgroup> create(std::uint64_t limit) {
        auto self = read_file("/proc/self/cgroup");
        if (!self) return fail("cannot read /proc/self/cgroup");
        for (const std::string& line : split(*self, '\n')) {
            std::vector<std::string> fields = split(line, ':');
            if (fields.size() < 3) continue;
            std::string path = line.substr(fields[0].size() + fields[1].size() + 2);
            bool v1 = false;
            for (const std::string& controller : split(fields[1], ',')) v1 = v1 || controller == "memory";
            std::string dir;
            if (v1) dir = "/sys/fs/cgroup/memory" + (path == "/" ? "" : path);
            else if (fields[0] == "0" && fields[1].empty() && path_exists("/sys/fs/cgroup/cgroup.controllers"))
                dir = "/sys/fs/cgroup" + (path == "/" ? "" : path);
            else continue;
            MemoryCgroup cgroup;
            cgroup.m_dir = str_cat(dir, "/kiln-test-", ::getpid());
            cgroup.m_v1 = v1;
            if (::mkdir(cgroup.m_dir.c_str(), 0755) != 0) return fail_errno("mkdir " + cgroup.m_dir);
            const char* limit_file = v1 ? "memory.limit_in_bytes" : "memory.max";
            if (!write_file(cgroup.m_dir + "/" + limit_file, str_cat(limit)))
                return fail(str_cat("cannot limit ", cgroup.m_dir, " (", limit_file, ")"));
            if (!v1) write_file(cgroup.m_dir + "/memory.swap.max", "0");
            else write_file(cgroup.m_dir + "/memory.memsw.limit_in_bytes", str_cat(limit));
            return cgroup;
        }
        return fail("no memory cgroup hierarchy this test can make a child in");
    }
    MemoryCgroup() = default;
    MemoryCgroup(MemoryCgroup&& other) noexcept : m_dir(std::exchange(other.m_dir, {})), m_v1(other.m_v1) {}
    ~MemoryCgroup() {
        if (!m_dir.empty()) ::rmdir(m_dir.c_str());
    }
    // A command prefix that runs the rest in this cgroup.
    std::vector<std::string> prefix() const {
        return {"sh", "-c", str_cat("echo $$ > ", m_dir, "/cgroup.procs && exec \"$@\""), "sh"};
    }
    // OOM kills in this cgroup so far.
    std::uint64_t oom_kills() const {
        auto text = read_file(m_dir + (m_v1 ? "/memory.oom_control" : "/memory.events"));
        for (const std::string& line : split(text.value_or(""), '\n')) {
            if (!line.starts_with("oom_kill ")) continue;
            std::uint64_t kills = 0;
            if (parse_uint64(line.substr(9), kills)) return kills;
        }
        return 0;
    }

private:
    static bool write_file(const std::string& path, const std::string& text) {
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
    }
    std::string m_dir;
    bool m_v1 = false;
};

// kiln in a pod with a small memory limit: its automatic budget follows the cgroup's headroom, a layer larger
// than the budget spills to the disk, and nothing is OOM-killed.
TEST_F(ExtractedLayersTest, ABuildInASmallMemoryCgroupSpillsToTheDiskWithoutAnOomKill) {
    if (::geteuid() != 0) GTEST_SKIP() << "making a memory cgroup needs root";
    constexpr std::uint64_t k_limit = 160ull << 20;
    auto cgroup = MemoryCgroup::create(k_limit);
    if (!cgroup) GTEST_SKIP() << cgroup.error().message();
    // A base whose second layer (100 MB of random bytes) is larger than any budget the limit leaves.
    std::vector<std::string> layers = base_layers();
    TestTar big;
    big.dir("big");
    for (int i = 0; i < 25; ++i) big.file(str_cat("big/", i), pseudo_random_bytes(4 << 20, static_cast<std::uint32_t>(i + 1)));
    layers.push_back(big.bytes());
    std::string layout = case_path("big-layout");
    ASSERT_TRUE(write_test_image(layout, "latest", layers));

    m_command_prefix = cgroup->prefix();
    KilnRun run = build_ok("FROM big\nRUN cat /big/* | wc -c > /size && ls /big | wc -l > /count\n",
                           {"--build-context", "big=oci-layout://" + layout, "--snapshotter=overlay",
                            "--work-dir", case_path("work")});
    m_command_prefix.clear();
    EXPECT_TRUE(run.output.find("into memory up to") != std::string::npos) << run.output;
    EXPECT_NE(run.output.find("memory budget: full"), std::string::npos) << run.output;
    EXPECT_EQ(content_of("count"), "25\n");
    EXPECT_EQ(content_of("size"), "104857600\n");
    EXPECT_EQ(cgroup->oom_kills(), 0u);
}

}  // namespace
}  // namespace kiln::test
