//! `crustctl images [IMAGE]` as crictl lists them (sorted by first tag; crictl's table,
//! `-q`, `-v`, `--digests`, `--no-trunc`, `-o json|yaml` in crictl's shape), and
//! `crustctl images import FILE`.

use k8s_cri::v1::{self as cri, ImageFilter, ImageSpec, ListImagesRequest};

use super::output::{human_size, print_list, short_id, Format, Table};
use super::{rpc, Conn};

/// Arguments.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Only this image (name, id or id prefix).
    image: Option<String>,
    /// Only print image ids.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// One block of details per image.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Do not truncate ids.
    #[arg(long)]
    no_trunc: bool,
    /// Output format: table, json or yaml.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(subcommand)]
    sub: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Import an OCI or docker-save archive.
    Import(super::import::Args),
}

/// crictl's `normalizeRepoTagPair`: `[repo, tag]` per tag, `[name, <none>]` without tags.
fn repo_tags(tags: &[String], name: &str) -> Vec<[String; 2]> {
    if tags.is_empty() {
        return vec![[name.to_string(), "<none>".into()]];
    }
    tags.iter()
        .map(|t| match t.rfind(':') {
            None => ["errorRepoTag".into(), "errorRepoTag".into()],
            Some(i) => {
                let repo = if &t[..i] == "<none>" { name } else { &t[..i] };
                [repo.to_string(), t[i + 1..].to_string()]
            }
        })
        .collect()
}

/// crictl's `normalizeRepoDigest`: (name, digest) of the first repo digest.
fn repo_digest(digests: &[String]) -> (String, String) {
    match digests.first().map(|d| d.split('@').collect::<Vec<_>>()) {
        None => ("<none>".into(), "<none>".into()),
        Some(p) if p.len() == 2 => (p[0].to_string(), p[1].to_string()),
        Some(_) => ("errorName".into(), "errorRepoDigest".into()),
    }
}

/// crictl's order: by first tag, else first digest, else id.
fn by_ref(a: &cri::Image, b: &cri::Image) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.repo_tags.first(), b.repo_tags.first()) {
        return x.cmp(y);
    }
    match (a.repo_digests.first(), b.repo_digests.first()) {
        (Some(x), Some(y)) => x.cmp(y),
        _ => a.id.cmp(&b.id),
    }
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    if let Some(Sub::Import(i)) = a.sub {
        return super::import::run(conn, i).await;
    }
    let filter = a.image.map(|i| ImageFilter {
        image: Some(ImageSpec {
            image: i,
            ..Default::default()
        }),
    });
    let mut resp = conn
        .images()
        .await?
        .list_images(ListImagesRequest { filter })
        .await
        .map_err(rpc)?
        .into_inner();
    resp.images.sort_by(by_ref);
    if a.output != Format::Table {
        return print_list(&resp, a.output);
    }
    let mut t = Table::default();
    if !a.verbose && !a.quiet {
        if a.digests {
            t.row(["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"]);
        } else {
            t.row(["IMAGE", "TAG", "IMAGE ID", "SIZE"]);
        }
    }
    let mut blocks = String::new();
    for img in &resp.images {
        if a.quiet {
            println!("{}", img.id);
            continue;
        }
        if a.verbose {
            blocks.push_str(&format!("ID: {}\n", img.id));
            for tag in &img.repo_tags {
                blocks.push_str(&format!("RepoTags: {tag}\n"));
            }
            for d in &img.repo_digests {
                blocks.push_str(&format!("RepoDigests: {d}\n"));
            }
            if img.size != 0 {
                blocks.push_str(&format!("Size: {}\n", img.size));
            }
            if let Some(uid) = &img.uid {
                blocks.push_str(&format!("Uid: value:{}\n", uid.value));
            }
            if !img.username.is_empty() {
                blocks.push_str(&format!("Username: {}\n", img.username));
            }
            blocks.push('\n');
            continue;
        }
        let (name, mut digest) = repo_digest(&img.repo_digests);
        let mut id = img.id.clone();
        if !a.no_trunc {
            id = short_id(&id);
            digest = short_id(&digest);
        }
        let size = human_size(img.size);
        for [repo, tag] in repo_tags(&img.repo_tags, &name) {
            if a.digests {
                t.row([repo, tag, digest.clone(), id.clone(), size.clone()]);
            } else {
                t.row([repo, tag, id.clone(), size.clone()]);
            }
        }
    }
    print!("{blocks}");
    if !a.quiet {
        t.print();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests_as_crictl_splits_them() {
        let d = ["docker.io/library/busybox@sha256:abc".to_string()];
        assert_eq!(
            repo_digest(&d),
            ("docker.io/library/busybox".into(), "sha256:abc".into())
        );
        assert_eq!(repo_digest(&[]), ("<none>".into(), "<none>".into()));
        assert_eq!(
            repo_tags(&["localhost:5000/a/b:v1".into()], "x"),
            [["localhost:5000/a/b".to_string(), "v1".to_string()]]
        );
        assert_eq!(
            repo_tags(&[], "n"),
            [["n".to_string(), "<none>".to_string()]]
        );
    }
}
