//! The runtime image: `FROM scratch` plus the static `mock-backends` and `chaosgate` binaries,
//! tagged by a hash of its content and built locally (no registry is needed or used).
//!
//! Where the static binaries come from, in order:
//! 1. `CHAOSGATE_STATIC_DIR`: a folder holding static `chaosgate` and `mock-backends`;
//! 2. next to the running executable: the executable itself when it is static (release builds
//!    are), and a static `mock-backends` beside it (release archives ship both);
//! 3. the source tree this binary was built from, when it still exists and `cargo` runs: they
//!    are built there with `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release
//!    --target x86_64-unknown-linux-gnu -p mock-backends -p chaosgate` (cargo makes a repeat
//!    build a no-op).
//!
//! Anything else fails with an error that lists these three ways.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::engine::{DockerError, Engine, MANAGED_LABEL, api, is_not_found};

/// Repository of the runtime image; the tag is a content hash.
pub const IMAGE_REPOSITORY: &str = "chaosgate-runtime";
/// Environment variable naming a folder with the static binaries.
pub const STATIC_DIR_ENV: &str = "CHAOSGATE_STATIC_DIR";
/// The (only) target the static binaries are built for.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The unprivileged user the containers run as (`nobody`).
pub const CONTAINER_USER: &str = "65534:65534";

/// No `# syntax=` line: BuildKit would try to pull a frontend image.
const DOCKERFILE: &str = "FROM scratch\n\
COPY mock-backends /mock-backends\n\
COPY chaosgate /chaosgate\n\
USER 65534:65534\n\
ENTRYPOINT [\"/mock-backends\"]\n";

/// The two static binaries that go into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticBinaries {
    /// A static `mock-backends`.
    pub mock_backends: PathBuf,
    /// A static `chaosgate`.
    pub chaosgate: PathBuf,
}

/// A runtime image known to exist in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeImage {
    /// `chaosgate-runtime:<hash>`.
    pub tag: String,
    /// Whether this call built it (false: it was already there).
    pub built: bool,
}

impl StaticBinaries {
    /// Finds the static binaries (see the module docs), building them from the source tree as a
    /// last resort.
    pub async fn locate_or_build() -> Result<StaticBinaries, DockerError> {
        if let Some(dir) = std::env::var_os(STATIC_DIR_ENV) {
            let dir = PathBuf::from(dir);
            return Self::in_dir(&dir, &dir.join("chaosgate")).map_err(|why| {
                DockerError::Binaries(format!("{STATIC_DIR_ENV}={}: {why}", dir.display()))
            });
        }
        let beside_exe = match std::env::current_exe() {
            Ok(exe) => match exe.parent().map(|dir| Self::in_dir(dir, &exe)) {
                Some(Ok(found)) => return Ok(found),
                Some(Err(why)) => why,
                None => format!("{} has no parent folder", exe.display()),
            },
            Err(e) => format!("the running executable is unknown: {e}"),
        };
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        if manifest_dir
            .join("mock-backends")
            .join("Cargo.toml")
            .is_file()
        {
            return Self::build_in(manifest_dir).await;
        }
        Err(DockerError::Binaries(format!(
            "the docker runtime needs static builds of chaosgate and mock-backends for its image, \
             and found none: {beside_exe}; set {STATIC_DIR_ENV} to a folder holding both, or put \
             a static mock-backends next to a static chaosgate, or run from a chaosgate source \
             tree ({}) with cargo installed",
            manifest_dir.display()
        )))
    }

    /// `mock-backends` in `dir` and the given `chaosgate`, both static.
    pub(super) fn in_dir(dir: &Path, chaosgate: &Path) -> Result<StaticBinaries, String> {
        let mock_backends = dir.join("mock-backends");
        for path in [&mock_backends, &chaosgate.to_path_buf()] {
            match is_static_elf(path) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "{} is not a static executable (a FROM scratch image needs one)",
                        path.display()
                    ));
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(StaticBinaries {
            mock_backends,
            chaosgate: chaosgate.to_path_buf(),
        })
    }

    /// Builds both binaries statically in the source tree at `root`.
    async fn build_in(root: &Path) -> Result<StaticBinaries, DockerError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target_dir =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        tracing::info!(root = %root.display(), "building static binaries for the docker image");
        let output = tokio::process::Command::new(&cargo)
            .current_dir(root)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "--locked", "--target", STATIC_TARGET])
            .args(["-p", "mock-backends", "-p", "chaosgate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| {
                DockerError::Binaries(format!(
                    "cannot run {} to build the static binaries: {e}",
                    Path::new(&cargo).display()
                ))
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(DockerError::Binaries(format!(
                "building the static binaries failed ({}):\n{}",
                output.status,
                tail.join("\n")
            )));
        }
        let dir = target_dir.join(STATIC_TARGET).join("release");
        Self::in_dir(&dir, &dir.join("chaosgate")).map_err(DockerError::Binaries)
    }
}

/// Whether `path` is a 64-bit little-endian ELF executable without an interpreter (a static or
/// static-pie binary), read from its program headers.
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        // Shorter than an ELF header: not an executable.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let phoff = u64::from_le_bytes(header[32..40].try_into().unwrap_or_default());
    let phentsize = usize::from(u16_at(&header, 54));
    let phnum = usize::from(u16_at(&header, 56));
    // Real executables have a few dozen 56-byte entries; anything else is not one.
    if !(4..=256).contains(&phentsize) || phnum == 0 || phnum > 4096 {
        return Ok(false);
    }
    let mut table = vec![0u8; phentsize * phnum];
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(phoff))?;
    file.read_exact(&mut table)?;
    Ok(table
        .chunks_exact(phentsize)
        .all(|entry| u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) != PT_INTERP))
}

/// The image tag for these binaries: a hash of the Dockerfile and both files.
pub fn image_tag(binaries: &StaticBinaries) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(DOCKERFILE.as_bytes());
    for path in [&binaries.mock_backends, &binaries.chaosgate] {
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        // Separates the files so moving bytes between them changes the hash.
        hash.update([0xff]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{IMAGE_REPOSITORY}:{hex}"))
}

/// Makes sure the image for `binaries` exists, building it when it does not.
pub async fn ensure_image(
    engine: &Engine,
    binaries: &StaticBinaries,
) -> Result<RuntimeImage, DockerError> {
    let tag = image_tag(binaries).map_err(|e| DockerError::Image {
        tag: IMAGE_REPOSITORY.to_owned(),
        message: format!("cannot read the static binaries: {e}"),
    })?;
    match engine.docker().inspect_image(&tag).await {
        Ok(_) => return Ok(RuntimeImage { tag, built: false }),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(api(format!("inspecting image {tag}"))(e)),
    }
    let context = build_context(binaries).map_err(|e| DockerError::Image {
        tag: tag.clone(),
        message: format!("cannot pack the build context: {e}"),
    })?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".to_owned(),
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some(HashMap::from([(
            MANAGED_LABEL.to_owned(),
            "true".to_owned(),
        )])),
        ..Default::default()
    };
    let mut progress =
        engine
            .docker()
            .build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let step = step.map_err(|e| DockerError::Image {
            tag: tag.clone(),
            message: e.to_string(),
        })?;
        if let Some(detail) = step.error_detail {
            return Err(DockerError::Image {
                tag,
                message: detail.message.unwrap_or_else(|| "unknown error".to_owned()),
            });
        }
    }
    engine
        .docker()
        .inspect_image(&tag)
        .await
        .map_err(api(format!("inspecting the image just built, {tag}")))?;
    remove_older_images(engine, &tag).await;
    Ok(RuntimeImage { tag, built: true })
}

/// Removes the runtime images of other builds (each rebuild of the binaries makes one), except
/// those containers still use: the engine refuses those without `force`, which is fine.
async fn remove_older_images(engine: &Engine, keep: &str) {
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "reference".to_owned(),
            vec![IMAGE_REPOSITORY.to_owned()],
        )])),
        ..Default::default()
    };
    let Ok(images) = engine.docker().list_images(Some(options)).await else {
        return;
    };
    for tag in images.iter().flat_map(|i| &i.repo_tags) {
        if tag != keep && tag.starts_with(&format!("{IMAGE_REPOSITORY}:")) {
            let options: Option<RemoveImageOptions> = None;
            if let Err(error) = engine.docker().remove_image(tag, options, None).await {
                tracing::debug!(%tag, %error, "keeping an older runtime image");
            }
        }
    }
}

/// A tar of the Dockerfile and both binaries, with fixed metadata.
fn build_context(binaries: &StaticBinaries) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    add("Dockerfile", 0o644, DOCKERFILE.as_bytes())?;
    add(
        "mock-backends",
        0o755,
        &std::fs::read(&binaries.mock_backends)?,
    )?;
    add("chaosgate", 0o755, &std::fs::read(&binaries.chaosgate)?)?;
    tar.into_inner()
}
