"""go_image: an OCI image for a static Go binary, built without a container daemon.

rules_oci and rules_docker cannot be had offline for Bazel 4.2, so images come from
//tools/image, a small go-containerregistry tool: empty base, one layer with the binary at
/bin/<binary name> (0755, root), each of `aliases` as a symlink to it (/bin/<alias>), the
Mozilla root CAs at /etc/ssl/certs/ca-certificates.crt (PEM, from the Go module
golang.org/x/crypto/x509roots/fallback pinned in go.sum: offline and reproducible), and
/etc/passwd naming the non-root user; entrypoint /bin/<binary name>, user 65532:65532,
linux/<arch>, fixed timestamps. Same binary, same digest.

Every service's BUILD.bazel ends with

    load("//tools:image.bzl", "go_image")

    go_image(
        name = "image",
        binary = ":calendar",
        aliases = ["calendar-gateway"],  # Argo Events v0.10's name: command: ["/bin/calendar-gateway"]
    )

and gets:
  :image.tar   the docker-loadable tarball (`bazel build //services/gateways/calendar:image.tar`,
               tagged eventgate/<binary name>:latest)
  :image       `bazel run` writes the tarball to <workspace>/out/images/<package>/image.tar and
               prints the digest; `bazel run :image -- --push 127.0.0.1:5000/eventgate/calendar:latest`
               also pushes it (add `--insecure` for a plain-HTTP registry that is not on loopback)
  :image_test  checks the tarball, and the image pushed to an in-process loopback registry and
               pulled back: entrypoint, non-root user, the binary byte for byte, each alias
               resolving to it, the CA bundle (PEM certificates that parse, at least 50)

//deploy:push (image_push below) pushes every service's image under one registry prefix.

The binary MUST be statically linked, since the image has no libc: set `pure = "on"` on its
go_binary (gazelle keeps that hand-set attribute). The tool refuses a dynamically linked
binary with an error saying so.
"""

_TOOL = "//tools/image"
_CHECK = "//tools/image/imagecheck"
_RUN = "//tools/image:run.sh"
_PUSH = "//tools/image/pushall"
_PUSH_TEST = "//tools/image/pushall:pushall_test"

def _label_name(label):
    """The target name of a label: ":calendar", "//a/b:calendar" and "//a/calendar" give "calendar"."""
    if ":" in label:
        return label.rsplit(":", 1)[1]
    return label.rsplit("/", 1)[-1]

def _quote(s):
    """Quotes s for the genrule's shell command."""
    return "'" + s.replace("'", "'\\''") + "'"

def go_image(
        name,
        binary,
        aliases = [],
        repository = None,
        tag = "latest",
        env = [],
        ports = [],
        arch = "amd64",
        visibility = None,
        tags = [],
        **kwargs):
    """An OCI image running `binary` as a non-root user; see the file comment for the targets.

    Args:
      name: the runnable target; the tarball is `<name>.tar`, the check `<name>_test`.
      binary: a go_binary with pure = "on" (static); it becomes /bin/<its target name>.
      aliases: more names for the binary, each /bin/<alias>, a symlink to it (e.g. the v0.10
        name "webhook-gateway", so v0.10 Gateway templates' commands keep working).
      repository: the name the tarball is tagged with; default "eventgate/<binary name>".
      tag: the tarball's tag.
      env: ["KEY=VALUE", ...] added to the image's environment.
      ports: ports the image declares, "9330" or "9330/tcp".
      arch: the CPU architecture of the binary (amd64 or arm64); the tool checks the ELF.
      visibility: of the tarball and the runnable target; the tarball is always visible to
        //deploy, whose push target takes every image.
      tags: added to every generated target.
      **kwargs: passed to every generated target (e.g. testonly).
    """
    bin_name = _label_name(binary)
    if repository == None:
        repository = "eventgate/" + bin_name

    # The same flags for the build action and for `bazel run`, so both make the same image.
    flags = ["--name", bin_name, "--repository", repository, "--tag", tag, "--arch", arch]
    flags += ["--alias=" + a for a in aliases]
    flags += ["--env=" + e for e in env]
    flags += ["--port=" + p for p in ports]

    native.genrule(
        name = name + "_tarball",
        srcs = [binary],
        outs = [name + ".tar"],
        cmd = " ".join(
            ["$(execpath %s)" % _TOOL, "--quiet", "--binary", "$(execpath %s)" % binary] +
            [_quote(f) for f in flags] +
            ["--tarball", "$@", ">/dev/null"],
        ),
        tools = [_TOOL],
        message = "Building image " + repository + ":" + tag,
        visibility = (visibility or []) + ["//deploy:__pkg__"],
        tags = tags,
        **kwargs
    )

    native.sh_binary(
        name = name,
        srcs = [_RUN],
        data = [_TOOL, binary],
        args = [
            "$(rootpath %s)" % _TOOL,
            native.package_name() + "/" + name,
            "--binary",
            "$(rootpath %s)" % binary,
        ] + [_quote(f) for f in flags],  # args are split like a shell would
        visibility = visibility,
        tags = tags,
        **kwargs
    )

    native.sh_test(
        name = name + "_test",
        size = "small",
        srcs = [_CHECK],
        data = [":" + name + ".tar", binary],
        args = [
            "--tarball",
            "$(rootpath :%s.tar)" % name,
            "--entrypoint",
            "/bin/" + bin_name,
            "--binary",
            "$(rootpath %s)" % binary,
            "--arch",
            arch,
            "--ca-certs",
            "/etc/ssl/certs/ca-certificates.crt",
        ] + ["--alias=/bin/" + a for a in aliases] + [
            # Also push to a registry on a loopback port and check the image pulled back.
            "--through-registry",
            repository,
        ],
        tags = tags,
        **kwargs
    )

def image_push(name, images, tags = [], **kwargs):
    """`bazel run :<name> -- --registry HOST[:PORT]/PREFIX [--tag T]` pushes every image.

    Each image goes to HOST[:PORT]/PREFIX/<its name>:T (T defaults to latest), as built by
    go_image (the same digest `bazel run <image>` prints); one REF:T@DIGEST line per image.
    Loopback registries are spoken to in plain HTTP; `--insecure` allows it elsewhere.
    `:<name>_test` pushes the same images to an in-process loopback registry and pulls each
    back by its digest and its tag.

    Args:
      name: the runnable target; the test is `<name>_test`.
      images: {"webhook": "//services/gateways/webhook:image", ...}: repository name under the
        prefix -> a go_image target.
      tags: added to both targets.
      **kwargs: passed to both targets.
    """
    tarballs = [images[n] + ".tar" for n in images]
    args = []
    for n in images:
        args += ["--image", "%s=$(rootpath %s.tar)" % (n, images[n])]

    native.sh_binary(
        name = name,
        srcs = [_PUSH],
        data = tarballs,
        args = args,  # then whatever follows `--` on the bazel command line
        tags = tags,
        **kwargs
    )

    native.sh_test(
        name = name + "_test",
        size = "small",
        srcs = [_PUSH_TEST],
        data = tarballs,
        args = args,
        tags = tags,
        **kwargs
    )
