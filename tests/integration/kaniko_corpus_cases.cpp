#include "tests/integration/kaniko_corpus_cases.hpp"

#include <unistd.h>

#include <cctype>

namespace kiln::test {
namespace {

CorpusCase plain(std::string dockerfile, char build_class) {
    CorpusCase result;
    result.dockerfile = std::move(dockerfile);
    result.build_class = build_class;
    return result;
}

CorpusCase with_context(std::string dockerfile, std::string context, char build_class) {
    CorpusCase result = plain(std::move(dockerfile), build_class);
    result.context = std::move(context);
    return result;
}

CorpusCase with_args(std::string dockerfile, char build_class, std::vector<std::string> build_args,
                     std::vector<std::string> kaniko_flags = {}) {
    CorpusCase result = plain(std::move(dockerfile), build_class);
    result.build_args = std::move(build_args);
    result.kaniko_flags = std::move(kaniko_flags);
    return result;
}

std::vector<CorpusCase> make_cases() {
    std::vector<CorpusCase> cases;
    cases.push_back(with_context("dockerfiles-with-context/issue-1315/Dockerfile",
                                 "dockerfiles-with-context/issue-1315", 'C'));
    cases.push_back(with_context("dockerfiles-with-context/issue-721/Dockerfile",
                                 "dockerfiles-with-context/issue-721", 'B'));
    CorpusCase relative_ignore = plain("dockerfiles/Dockerfile_dockerignore_relative", 'A');
    relative_ignore.has_own_ignore_file = true;
    cases.push_back(relative_ignore);
    cases.push_back(plain("dockerfiles/Dockerfile_onbuild_base", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_registry_mirror", 'C'));
    cases.push_back(with_context("dockerfiles/Dockerfile_relative_copy", "context", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_blank_with_quotes", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_from_quotes", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_from_single_quotes", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_multi", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_multi_empty_val", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_multi_with_quotes", 'C'));
    // The private key's value comes from the environment (--build-arg NAME alone); neither value may be
    // logged.
    CorpusCase secret = with_args("dockerfiles/Dockerfile_test_arg_secret", 'C',
                                  {"SSH_PRIVATE_KEY", "SSH_PUBLIC_KEY=Pµbl1cK€Y"});
    secret.environment = {"SSH_PRIVATE_KEY=ThEPriv4t3Key"};
    secret.secrets = {"ThEPriv4t3Key", "Pµbl1cK€Y"};
    cases.push_back(secret);
    cases.push_back(plain("dockerfiles/Dockerfile_test_arg_two_level", 'B'));
    CorpusCase cache = plain("dockerfiles/Dockerfile_test_cache", 'C');
    cache.volatile_paths = {"/date"};
    cases.push_back(cache);
    cases.push_back(plain("dockerfiles/Dockerfile_test_cache_copy", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_cache_copy_oci", 'B'));
    CorpusCase cache_oci = plain("dockerfiles/Dockerfile_test_cache_oci", 'C');
    cache_oci.volatile_paths = {"/date"};
    cases.push_back(cache_oci);
    cases.push_back(plain("dockerfiles/Dockerfile_test_cache_perm", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_cache_perm_oci", 'C'));
    // Buildah parses `["myentrypoint"] # …` as JSON; Docker's parser (buildkit, expected-parse/…cmd.dump)
    // finds trailing text after the array, so the line is shell form. Buildah gets the exec form Docker makes
    // of it.
    CorpusCase cmd = plain("dockerfiles/Dockerfile_test_cmd", 'B');
    cmd.buildah_substitutions = {
        {R"(ENTRYPOINT ["myentrypoint"] # This should clear out CMD in the config metadata)",
         R"(ENTRYPOINT ["/bin/sh", "-c", "[\"myentrypoint\"] # This should clear out CMD in the config metadata"])"}};
    cases.push_back(cmd);
    cases.push_back(plain("dockerfiles/Dockerfile_test_complex_substitution", 'C'));
    // Two buildah faults here. (1) Its copier globs the names that its own glob already matched, so no
    // pattern can make it COPY the file `context/arr[0].txt` ("globs [/context/arr[0].txt] matched nothing"):
    // for buildah, the line that names it is dropped and `context/*` becomes `context/[^a]*` (every other
    // entry of context/), and the test supplies the file where Docker copies it. (2) It makes `hello` a
    // directory because the COPY lists two sources, although the wildcard one matches nothing; Docker and
    // Kaniko count the files matched (one) and copy context/foo to the file /hello, which buildah does for
    // `COPY context/foo hello`.
    for (const char* copy :
         {"dockerfiles/Dockerfile_test_copy", "dockerfiles/Dockerfile_test_copy_reproducible"}) {
        CorpusCase copies = plain(copy, 'B');
        copies.buildah_substitutions = {
            {"COPY context/arr[[]0].txt /mydir/\n", ""},
            {"COPY $contextenv/* /tmp/${contextenv}/", "COPY $contextenv/[^a]* /tmp/${contextenv}/"},
            {"COPY context/bar/doesnotexist* context/foo hello", "COPY context/foo hello"}};
        copies.copied_without_buildah = {{"/mydir/arr[0].txt", "context/arr[0].txt"},
                                         {"/tmp/context/arr[0].txt", "context/arr[0].txt"}};
        cases.push_back(copies);
    }
    cases.push_back(plain("dockerfiles/Dockerfile_test_copy_root_multistage", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_copy_same_file_many_times", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_copy_symlink", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_copyadd_chmod", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_daemons", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_deleted_file_cached", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_dockerignore", 'A'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_env", 'B'));
    // Buildah drops an EXPOSE of a port number that an earlier EXPOSE gave another protocol (83/tcp after
    // 83/udp); Docker keeps both. In one instruction buildah keeps both too.
    CorpusCase expose = plain("dockerfiles/Dockerfile_test_expose", 'B');
    expose.buildah_substitutions = {
        {"EXPOSE $port/udp\nEXPOSE $port/$protocol", "EXPOSE $port/udp $port/$protocol"}};
    cases.push_back(expose);
    cases.push_back(plain("dockerfiles/Dockerfile_test_extract_fs", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_from_multistage_capital", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_ignore", 'A'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_issue_519", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_issue_647", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_issue_704", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_label", 'B'));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_maintainer", 'A', {}, {"--single-snapshot"}));
    cases.push_back(plain("dockerfiles/Dockerfile_test_metadata", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_multistage_args_issue_1911", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_mv_add", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_registry", 'C'));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_run", 'C', {"file=/file"}));
    cases.push_back(plain("dockerfiles/Dockerfile_test_run_2", 'C'));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_run_new", 'C', {"file=/file"}, {"--use-new-run"}));
    cases.push_back(
        with_args("dockerfiles/Dockerfile_test_run_redo", 'C', {"file=/file"}, {"--snapshot-mode=redo"}));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_scratch", 'A',
                              {"image=scratch", "hello=hello-value", "file=context/foo", "file3=context/b*"},
                              {"--single-snapshot"}));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_snapshotter_ignorelist", 'C', {},
                              {"--use-new-run", "-v=trace"}));
    CorpusCase target = plain("dockerfiles/Dockerfile_test_target", 'B');
    target.target = "second";
    cases.push_back(target);
    cases.push_back(plain("dockerfiles/Dockerfile_test_user", 'B'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_volume", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_volume_2", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_volume_3", 'C'));
    cases.push_back(plain("dockerfiles/Dockerfile_test_whitelist", 'C'));
    cases.push_back(with_args("dockerfiles/Dockerfile_test_workdir", 'C', {"workdir=/arg/workdir"}));
    cases.push_back(plain("dockerfiles/TestReplaceFolderWithFile", 'C'));
    cases.push_back(plain("dockerfiles/TestReplaceFolderWithLink", 'C'));
    cases.push_back(with_context("testdata/Dockerfile.trivial", "testdata", 'C'));
    CorpusCase exit_code = with_context("testdata/exit-code-propagation/Dockerfile_exit_code_propagation",
                                        "testdata/exit-code-propagation", 'C');
    exit_code.expected_exit_code = 42;
    cases.push_back(exit_code);
    return cases;
}

}  // namespace

const std::vector<CorpusCase>& kaniko_corpus_cases() {
    static const std::vector<CorpusCase> cases = make_cases();
    return cases;
}

void PrintTo(const CorpusCase& corpus_case, std::ostream* out) {
    *out << corpus_case.dockerfile;
}

std::string case_name(const CorpusCase& corpus_case) {
    std::string path = corpus_case.dockerfile;
    std::string name = path.substr(path.rfind('/') + 1);
    if (name == "Dockerfile") {  // dockerfiles-with-context/<dir>/Dockerfile: the directory names it
        std::string dir = path.substr(0, path.rfind('/'));
        name = dir.substr(dir.rfind('/') + 1);
    }
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}

std::string kaniko_corpus_dir() {
    std::string dir = std::string(KILN_SOURCE_DIR) + "/../shared/corpora/kaniko-integration";
    return ::access((dir + "/BUILDABILITY.tsv").c_str(), R_OK) == 0 ? dir : std::string();
}

}  // namespace kiln::test
