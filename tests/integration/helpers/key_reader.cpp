// Copied into a test image and run by a RUN step (built static: the image has no C library): reads the
// payload of the key whose serial is argv[1], and prints it, or "denied: <errno>" when the step may not.

#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    long serial = std::strtol(argv[1], nullptr, 10);
    char payload[4096];
    long size = ::syscall(SYS_keyctl, KEYCTL_READ, serial, payload, sizeof payload);
    if (size < 0) {
        std::printf("denied: %d\n", errno);
        return 0;
    }
    std::fwrite(payload, 1, static_cast<size_t>(size) < sizeof payload ? static_cast<size_t>(size) : sizeof payload,
                stdout);
    std::printf("\n");
    return 0;
}
