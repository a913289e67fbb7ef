/* A minimal login program for tests/pam: open a PAM session, run a command in it as the user, close it.
 *
 * Why C: pam_python.so embeds the system Python; loaded into a process that already runs a Python
 * interpreter (a ctypes driver, python-pam) it either crashes or reuses the host's interpreter, neither of
 * which is how sshd or su run it. A C program runs the module exactly as a real login program does.
 *
 * usage: pam_driver SERVICE USER COMMAND [ARG...]
 * Report lines on stdout, each starting with "driver: ", written before the command starts and after it
 * ends (the command's own output goes to the same stdout in between):
 *   driver: ns_before=MNT PID_FOR_CHILDREN     the caller's namespaces before pam_open_session
 *   driver: open=RC MESSAGE                    pam_open_session's result
 *   driver: ns_after_open=MNT PID_FOR_CHILDREN ("unreadable" when /proc no longer shows the caller)
 *   driver: command=EXIT_CODE                  (only when the session opened)
 *   driver: close=RC MESSAGE                   (only when the session opened)
 *   driver: children_after_close=none|running|zombie
 *   driver: ns_after_close=MNT PID_FOR_CHILDREN
 * Exit status: 0 when open and close succeeded, 1 otherwise, 2 on a usage or set-up error.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int no_conversation(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
    (void)n; (void)msg; (void)resp; (void)data;
    return PAM_CONV_ERR; /* a session stack asks nothing */
}

static void link_of(const char *path, char *out, size_t size) {
    ssize_t len = readlink(path, out, size - 1);
    if (len < 0) {
        snprintf(out, size, "unreadable");
    } else {
        out[len] = '\0';
    }
}

static void report_namespaces(const char *label) {
    char mnt[128], pid[128];
    link_of("/proc/self/ns/mnt", mnt, sizeof mnt);
    link_of("/proc/self/ns/pid_for_children", pid, sizeof pid);
    printf("driver: %s=%s %s\n", label, mnt, pid);
    fflush(stdout);
}

static int run_as_user(const char *user, char **argv) {
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        fprintf(stderr, "pam_driver: no user %s\n", user);
        return 127;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "pam_driver: fork: %s\n", strerror(errno));
        return 127;
    }
    if (child == 0) {
        if (pw->pw_uid != 0 && (initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
                                setuid(pw->pw_uid) != 0)) {
            fprintf(stderr, "pam_driver: cannot become %s: %s\n", user, strerror(errno));
            _exit(126);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "pam_driver: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            return 127;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: pam_driver SERVICE USER COMMAND [ARG...]\n");
        return 2;
    }
    struct pam_conv conv = {no_conversation, NULL};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(argv[1], argv[2], &conv, &pamh);
    if (rc != PAM_SUCCESS) {
        fprintf(stderr, "pam_driver: pam_start: %d\n", rc);
        return 2;
    }
    report_namespaces("ns_before");
    int opened = pam_open_session(pamh, 0);
    printf("driver: open=%d %s\n", opened, pam_strerror(pamh, opened));
    fflush(stdout);
    report_namespaces("ns_after_open");
    int closed = PAM_SESSION_ERR;
    if (opened == PAM_SUCCESS) {
        printf("driver: command=%d\n", run_as_user(argv[2], argv + 3));
        closed = pam_close_session(pamh, 0);
        printf("driver: close=%d %s\n", closed, pam_strerror(pamh, closed));
    }
    int status;
    pid_t left = waitpid(-1, &status, WNOHANG);
    printf("driver: children_after_close=%s\n", left < 0 ? "none" : left == 0 ? "running" : "zombie");
    fflush(stdout);
    report_namespaces("ns_after_close");
    pam_end(pamh, closed);
    return opened == PAM_SUCCESS && closed == PAM_SUCCESS ? 0 : 1;
}
