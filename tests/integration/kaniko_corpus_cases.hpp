#pragma once
// The Kaniko integration Dockerfiles that build offline against a busybox base (classes A, B and C of
// ../shared/corpora/kaniko-integration/BUILDABILITY.tsv), with the build args, environment and executor flags
// that upstream's integration/images.go gives them (restated in ../shared/corpora/README.md, section 3).

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

struct CorpusCase {
    std::string dockerfile;  // relative to the corpus root
    std::string context;     // relative to the corpus root; "" is the root itself
    char build_class = 'C';  // as in BUILDABILITY.tsv
    // --build-arg for both builders: NAME=VALUE, or NAME to take the value from `environment`.
    std::vector<std::string> build_args;
    std::vector<std::string> environment;  // K=V added to both builders' environment
    // Kaniko executor flags that kiln must accept (buildah has no equivalent, and they do not change the
    // files).
    std::vector<std::string> kaniko_flags;
    std::string target;  // --target for both builders
    // Non-zero: the Dockerfile must fail to build; kiln must exit with exactly this code.
    int expected_exit_code = 0;
    // Files whose content is the build's own time (RUN date > /date): both builds must have them with the
    // same type, mode and owner, but size and content are not compared.
    std::vector<std::string> volatile_paths;
    // Values that must never appear in kiln's log (secrets passed as build args).
    std::vector<std::string> secrets;
    // Per-Dockerfile ignore file (kaniko's <Dockerfile>.dockerignore): kiln finds it beside the Dockerfile,
    // buildah does not look for it and is given it with --ignorefile instead.
    bool has_own_ignore_file = false;
    // Text replaced in buildah's copy of the Dockerfile only, where buildah 1.28 itself is wrong (B6 in
    // kaniko_corpus_test.cpp); each replacement must give Docker's result for the line.
    std::vector<std::pair<std::string, std::string>> buildah_substitutions;
    // Files that buildah 1.28 cannot COPY at all (their line is substituted away for it): image path →
    // context path. The test adds to buildah's tree what Docker's COPY makes of them — the context file's
    // content and mode, owner 0:0, missing parents as directories 0755 0:0 — and kiln's image must hold
    // exactly that.
    std::vector<std::pair<std::string, std::string>> copied_without_buildah;
    // Non-empty while kiln is known not to match buildah on this Dockerfile: the kiln bug, as reported. The
    // test still builds and compares; it is skipped with this reason and its differences while they persist,
    // and fails once kiln matches, so that the entry is removed.
    std::string known_kiln_gap;
};

// Prints the Dockerfile's path (GoogleTest shows it for a failing case instead of the struct's bytes).
void PrintTo(const CorpusCase& corpus_case, std::ostream* out);

// All 62 cases, in BUILDABILITY.tsv order.
const std::vector<CorpusCase>& kaniko_corpus_cases();

// A GoogleTest-safe name: "Dockerfile_test_run", "issue_1315", "Dockerfile_trivial".
std::string case_name(const CorpusCase& corpus_case);

// The corpus, or "" when ../shared/corpora is absent.
std::string kaniko_corpus_dir();

}  // namespace kiln::test
