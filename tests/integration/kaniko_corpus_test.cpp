// Issue 3's acceptance test. Every Kaniko integration Dockerfile of classes A, B and C (BUILDABILITY.tsv) is
// built by kiln and by buildah from the same rewritten Dockerfile against one kiln-made busybox base in one
// local registry; both push there, and the two images must agree on
//   - the flattened filesystem: path, type, mode, uid, gid, size, sha256 of content, symlink target (not
//     mtimes);
//   - the runtime config: User, Env, Entrypoint, Cmd, WorkingDir, Labels, ExposedPorts, Volumes,
//     StopSignal, Healthcheck, Shell, OnBuild (not history, created or the layer count, which kaniko's
//     --single-snapshot and buildah's single layer per build change by design).
// A Dockerfile that must fail is checked for the failure and kiln's exit code instead.
//
// The Dockerfiles are rewritten to build offline (corpus_rewrite.hpp states the rules,
// corpus_rewrite_test.cpp shows them): every FROM image that is not `scratch` or a stage, and every global
// ARG default feeding a FROM, moves under <registry>/mirror/ with its variables kept, pinned digests become
// tags, and the test pushes the base under each mirror name the Dockerfile resolves to with its build args.
//
// Buildah 1.28 differs from Docker and Kaniko in these ways; each is undone by exactly one measure, and
// nothing else is ignored:
//   B1 Its chroot isolation leaves a RUN step's mount points in the image: empty directories /dev, /proc,
//      /sys, /run and empty files /etc/hostname, /etc/hosts, /etc/resolv.conf. They are dropped from
//      buildah's tree when empty and absent from the base. kiln must never leave them: its tree keeps them,
//      so one there is a difference.
//   B2 It adds the label io.buildah.version: it builds with --identity-label=false.
//   B3 It does not read kaniko's per-Dockerfile <Dockerfile>.dockerignore: it gets that file with
//      --ignorefile.
//   B4 It leaves a RUN step's background processes running after the build: it runs in a PID namespace of
//      its own, which takes them down (Dockerfile_test_daemons).
//   B5 Its OCI format drops ONBUILD, HEALTHCHECK and SHELL: it builds in Docker format, kiln in its default
//      (OCI), and only the config fields above are compared.
//   B6 Where buildah itself is wrong about a Dockerfile line, its copy of the Dockerfile gets a line that
//      gives Docker's result instead (CorpusCase::buildah_substitutions, each with its reason in
//      kaniko_corpus_cases.cpp): `ENTRYPOINT ["x"] # text` is JSON to buildah but shell form to Docker
//      (_cmd); a second EXPOSE of a port number with another protocol is dropped (_expose); a COPY listing
//      two sources makes its destination a directory even when one is a wildcard matching nothing, and a file
//      named arr[0].txt cannot be copied at all (_copy, _copy_reproducible: the test supplies Docker's entry
//      for it, CorpusCase::copied_without_buildah).
//   B7 When ENV redefines a variable, buildah moves it to the end of Env; Docker and Kaniko replace it in
//      place (_env). Env is compared sorted, after checking that each image names every variable once.
//   B8 Building with --layers=false, it makes the directory of every declared volume when it commits, even for a
//      VOLUME that no later RUN follows (_volume_2's last VOLUME /foo5). BuildKit and Kaniko never put a
//      volume's directory in the image, and buildah building layer by layer makes it only for a RUN after the
//      VOLUME, which is what kiln does. An empty directory at a declared volume that kiln's image lacks is
//      dropped from buildah's tree. (Building layer by layer instead would drop WORKDIR's directories, which
//      Docker makes.)
// corpus_compare.cpp implements B1, B6, B7 and B8; Buildah (tests/support/buildah.hpp) B2, B4 and B5.
//
// Kaniko's log checks in images.go become checks of the result: for _snapshotter_ignorelist kiln's log cannot
// say kaniko's "Resolved symlink /hello to /dev/null", so no layer of kiln's may hold /dev or a whiteout for
// it, and /hello must be the symlink that buildah makes. For _arg_secret, kiln's log must not contain either
// build-arg value.
//
// Each Dockerfile is one test (ctest runs each in its own process, which then sets up its own registry, base
// and buildah storage); run the binary alone to build the whole corpus in one process and print
// "kaniko corpus: N of 62 match buildah".

#include <chrono>
#include <cstdio>
#include <future>
#include <set>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/corpus_compare.hpp"
#include "tests/integration/corpus_rewrite.hpp"
#include "tests/integration/flat_image.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/kaniko_corpus_cases.hpp"
#include "tests/support/buildah.hpp"

extern char** environ;

namespace kiln::test {
namespace {

// One registry, one kiln-made busybox base and one buildah storage for every case that this process runs.
struct CorpusEnvironment {
    TempDir work;
    std::unique_ptr<RegistryProcess> registry;
    std::string base;
    ImageTree base_tree;
    std::unique_ptr<Buildah> buildah;  // destroyed before `work`, which holds its storage
    std::set<std::string> mirrors;     // references the base has been pushed under
};

// Where a case's two Dockerfiles, context and images are.
struct PreparedCase {
    std::string dockerfile;          // the rewritten Dockerfile, for kiln
    std::string buildah_dockerfile;  // the same with the case's B6 substitutions
    std::string ignore_file;         // the per-Dockerfile ignore file given to buildah (B3), or ""
    std::string context;
    std::string kiln_reference;
    std::string buildah_reference;
};

struct Verdict {
    std::string name;
    bool matches = false;
    std::string summary;
};

std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> environment;
    for (char** entry = environ; *entry; ++entry) environment.emplace_back(*entry);
    environment.insert(environment.end(), extra.begin(), extra.end());
    return environment;
}

std::string last_lines(const std::string& text, size_t count) {
    std::vector<std::string> lines = split(std::string(trim(text)), '\n');
    if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
    return join(lines, "\n");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class KanikoCorpusTest : public ::testing::TestWithParam<CorpusCase> {
protected:
    static void SetUpTestSuite() {
        if (kaniko_corpus_dir().empty()) {
            s_skip_reason =
                "../shared/corpora is absent (the Kaniko corpus is read from KILN_SOURCE_DIR/../shared)";
            return;
        }
        if ((s_skip_reason = missing_tools())) return;
        if ((s_skip_reason = Buildah::unavailable_reason())) return;
        auto environment = make_environment();
        if (environment)
            s_environment = std::move(*environment);
        else
            s_setup_error = environment.error().message();
    }

    // Prints "kaniko corpus: N of M match buildah" for the cases this process ran, and those that differ.
    static void TearDownTestSuite() {
        s_environment.reset();
        if (s_verdicts.empty()) return;
        size_t matching =
            std::count_if(s_verdicts.begin(), s_verdicts.end(), [](const Verdict& v) { return v.matches; });
        std::printf("kaniko corpus: %zu of %zu match buildah\n", matching, s_verdicts.size());
        for (const Verdict& verdict : s_verdicts)
            if (!verdict.matches)
                std::printf("  differs: %s: %s\n", verdict.name.c_str(), verdict.summary.c_str());
        s_verdicts.clear();
    }

    void SetUp() override {
        if (s_skip_reason) GTEST_SKIP() << *s_skip_reason;
        ASSERT_TRUE(s_environment) << "the shared registry, base image or buildah could not be set up: "
                                   << s_setup_error;
        // Every case that starts has a verdict, also when a failed assertion ends it early.
        s_verdicts.push_back(
            {case_name(GetParam()), false, "not compared: the test failed (see its output)"});
    }

    static Result<std::unique_ptr<CorpusEnvironment>> make_environment() {
        auto environment = std::make_unique<CorpusEnvironment>();
        KILN_ASSIGN(environment->work, TempDir::create(default_temp_parent(), "kiln-corpus-"));
        KILN_ASSIGN(environment->registry, RegistryProcess::start());
        KILN_ASSIGN(environment->base, push_busybox_base(*environment->registry, environment->work.path()));
        KILN_ASSIGN(PulledImage base,
                    pull_image(environment->base, environment->work.path() + "/base-image"));
        KILN_ASSIGN(environment->base_tree, flatten_layers(base.layer_files));
        KILN_ASSIGN(environment->buildah, Buildah::create(environment->work.path()));
        return environment;
    }

    // Writes both Dockerfiles into `dir` under the original's name (so that kaniko's <name>.dockerignore sits
    // beside kiln's) and pushes the base under every mirror name they pull.
    static Result<PreparedCase> prepare(const CorpusCase& corpus_case, const std::string& dir) {
        const std::string corpus = kaniko_corpus_dir();
        const std::string registry = s_environment->registry->host_port();
        const std::string original = corpus + "/" + corpus_case.dockerfile;
        const std::string file_name = original.substr(original.rfind('/') + 1);
        KILN_ASSIGN(std::string text, read_file(original));
        KILN_ASSIGN(
            RewrittenDockerfile rewritten,
            with_context(rewrite_for_local_registry(text, registry, corpus_case.build_args), original));
        PreparedCase prepared;
        prepared.dockerfile = dir + "/" + file_name;
        KILN_TRY(write_file_atomic(prepared.dockerfile, rewritten.text));
        if (corpus_case.has_own_ignore_file) {
            KILN_ASSIGN(std::string ignore, read_file(original + ".dockerignore"));
            prepared.ignore_file = prepared.dockerfile + ".dockerignore";
            KILN_TRY(write_file_atomic(prepared.ignore_file, ignore));
        }
        std::string buildah_text = rewritten.text;
        for (const auto& [from, to] : corpus_case.buildah_substitutions) {
            size_t at = buildah_text.find(from);
            if (at == std::string::npos) return fail(str_cat("B6: `", from, "` is not in ", original));
            buildah_text.replace(at, from.size(), to);
        }
        KILN_TRY(make_directories(dir + "/buildah"));
        prepared.buildah_dockerfile = dir + "/buildah/" + file_name;
        KILN_TRY(write_file_atomic(prepared.buildah_dockerfile, buildah_text));
        for (const std::string& mirror : rewritten.mirror_references) KILN_TRY(push_mirror(mirror));
        prepared.context = corpus_case.context.empty() ? corpus : corpus + "/" + corpus_case.context;
        std::string repository = to_lower(case_name(corpus_case));
        prepared.kiln_reference = str_cat(registry, "/kiln/", repository, ":1");
        prepared.buildah_reference = str_cat(registry, "/buildah/", repository, ":1");
        return prepared;
    }

    static Status push_mirror(const std::string& reference) {
        if (s_environment->mirrors.contains(reference)) return {};
        std::vector<std::string> argv = {"skopeo",
                                         "copy",
                                         "--quiet",
                                         "--src-tls-verify=false",
                                         "--dest-tls-verify=false",
                                         "docker://" + s_environment->base,
                                         "docker://" + reference};
        KILN_ASSIGN(ProcessResult copied, run_process(argv));
        if (copied.exit_code != 0) return fail(str_cat(join(argv, " "), ": ", copied.stderr_bytes));
        s_environment->mirrors.insert(reference);
        return {};
    }

    // buildah bud, then push and drop the local image so that the storage stays small.
    static Result<BuildahRun> build_with_buildah(const CorpusCase& corpus_case,
                                                 const PreparedCase& prepared) {
        BuildahBuild build{.context = prepared.context,
                           .dockerfile = prepared.buildah_dockerfile,
                           .image = "localhost/corpus/" + to_lower(case_name(corpus_case)),
                           .build_args = corpus_case.build_args,
                           .target = corpus_case.target,
                           .ignore_file = prepared.ignore_file,
                           .environment = corpus_case.environment};
        KILN_ASSIGN(BuildahRun run, s_environment->buildah->build(build));
        if (run.exit_code != 0) return run;
        KILN_TRY(s_environment->buildah->push(build.image, prepared.buildah_reference));
        KILN_TRY(s_environment->buildah->remove_image(build.image));
        return run;
    }

    static KilnRun build_with_kiln(const CorpusCase& corpus_case, const PreparedCase& prepared) {
        std::vector<std::string> arguments = {"build",
                                              "--context",
                                              prepared.context,
                                              "--dockerfile",
                                              prepared.dockerfile,
                                              "--destination",
                                              prepared.kiln_reference,
                                              "--insecure",
                                              "--insecure-pull"};
        for (const std::string& arg : corpus_case.build_args)
            arguments.insert(arguments.end(), {"--build-arg", arg});
        if (!corpus_case.target.empty()) arguments.insert(arguments.end(), {"--target", corpus_case.target});
        arguments.insert(arguments.end(), corpus_case.kaniko_flags.begin(), corpus_case.kaniko_flags.end());
        return run_kiln(arguments, {},
                        corpus_case.environment.empty() ? std::vector<std::string>{}
                                                        : environment_with(corpus_case.environment));
    }

    static void record(bool matches, const std::string& summary) {
        s_verdicts.back().matches = matches;
        s_verdicts.back().summary = summary;
    }

    static inline std::optional<std::string> s_skip_reason;
    static inline std::string s_setup_error;
    static inline std::unique_ptr<CorpusEnvironment> s_environment;
    static inline std::vector<Verdict> s_verdicts;
};

TEST_P(KanikoCorpusTest, KilnBuildsWhatBuildahBuilds) {
    const CorpusCase& corpus_case = GetParam();
    const std::string name = case_name(corpus_case);
    auto case_dir = TempDir::create(s_environment->work.path(), name + "-");
    ASSERT_TRUE(case_dir) << case_dir.error().message();
    auto prepared = prepare(corpus_case, case_dir->path());
    ASSERT_TRUE(prepared) << prepared.error().message();

    // buildah builds and pushes while kiln builds.
    auto start = std::chrono::steady_clock::now();
    auto buildah_future =
        std::async(std::launch::async, [&] { return build_with_buildah(corpus_case, *prepared); });
    KilnRun kiln = build_with_kiln(corpus_case, *prepared);
    double kiln_seconds = seconds_since(start);
    Result<BuildahRun> buildah = buildah_future.get();
    ASSERT_TRUE(buildah) << buildah.error().message();
    std::printf("kaniko corpus: %s: kiln %.1f s (exit %d), buildah %.1f s (exit %d)\n", name.c_str(),
                kiln_seconds, kiln.exit_code, seconds_since(start), buildah->exit_code);

    std::vector<std::string> problems;  // what kiln got wrong
    for (const std::string& secret : corpus_case.secrets)
        if (kiln.output.find(secret) != std::string::npos)
            problems.push_back("kiln's log shows the build-arg value " + secret);
    if (corpus_case.expected_exit_code != 0) {
        ASSERT_NE(buildah->exit_code, 0) << "buildah built a Dockerfile that must fail:\n" << buildah->output;
        if (kiln.exit_code != corpus_case.expected_exit_code)
            problems.push_back(str_cat("kiln exited with ", kiln.exit_code, ", not ",
                                       corpus_case.expected_exit_code, ":\n", last_lines(kiln.output, 10)));
        if (inspect_remote(prepared->kiln_reference))
            problems.push_back("kiln pushed an image although the build failed");
    } else {
        ASSERT_EQ(buildah->exit_code, 0) << "buildah, the reference, could not build it:\n"
                                         << buildah->output;
        if (kiln.exit_code != 0)
            problems.push_back(
                str_cat("kiln failed (exit ", kiln.exit_code, "):\n", last_lines(kiln.output, 10)));
    }
    if (corpus_case.expected_exit_code == 0 && kiln.exit_code == 0) {
        auto kiln_image = pull_image(prepared->kiln_reference, case_dir->path() + "/kiln-image");
        ASSERT_TRUE(kiln_image) << kiln_image.error().message();
        auto buildah_image = pull_image(prepared->buildah_reference, case_dir->path() + "/buildah-image");
        ASSERT_TRUE(buildah_image) << buildah_image.error().message();
        auto differences = differences_from_buildah(
            corpus_case, {*kiln_image, *buildah_image, s_environment->base_tree, prepared->context});
        ASSERT_TRUE(differences) << differences.error().message();
        problems.insert(problems.end(), differences->begin(), differences->end());
    }

    if (problems.empty()) {
        record(true, "");
        if (!corpus_case.known_kiln_gap.empty())
            FAIL() << "listed as a known kiln gap (" << corpus_case.known_kiln_gap
                   << ") but kiln now matches buildah: remove the entry from kaniko_corpus_cases.cpp";
        return;
    }
    std::vector<std::string> first = split(problems.front(), '\n');
    std::string summary = first.size() > 1 ? first[0] + " " + std::string(trim(first[1])) : first[0];
    record(false,
           corpus_case.known_kiln_gap.empty() ? summary : "known kiln gap: " + corpus_case.known_kiln_gap);
    std::string report =
        str_cat(corpus_case.dockerfile, " (as built: ", prepared->dockerfile, ")\n", join(problems, "\n"));
    if (!corpus_case.known_kiln_gap.empty())
        GTEST_SKIP() << "known kiln gap: " << corpus_case.known_kiln_gap << "\n" << report;
    FAIL() << report;
}

INSTANTIATE_TEST_SUITE_P(Kaniko, KanikoCorpusTest, ::testing::ValuesIn(kaniko_corpus_cases()),
                         [](const ::testing::TestParamInfo<CorpusCase>& param) {
                             return case_name(param.param);
                         });

}  // namespace
}  // namespace kiln::test
