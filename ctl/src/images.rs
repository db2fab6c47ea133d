//! `crustctl images [IMAGE]` (crictl's table, `-q`, `--digests`, `--no-trunc`, `-o`), and
//! `crustctl images import FILE`.

use k8s_cri::v1::{ImageFilter, ImageSpec, ListImagesRequest};

use super::output::{human_size, print, short_id, Format};
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
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Do not truncate ids.
    #[arg(long)]
    no_trunc: bool,
    /// Output format.
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

fn split_tag(tag: &str) -> (String, String) {
    match tag.rfind(':') {
        Some(i) if !tag[i..].contains('/') => (tag[..i].to_string(), tag[i + 1..].to_string()),
        _ => (tag.to_string(), "<none>".into()),
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
    let resp = conn
        .images()
        .await?
        .list_images(ListImagesRequest { filter })
        .await
        .map_err(rpc)?
        .into_inner();
    let mut images = resp.images;
    images.sort_by(|a, b| a.repo_tags.first().cmp(&b.repo_tags.first()));
    if a.output != Format::Table {
        return print(&serde_json::json!({ "images": images }), a.output);
    }
    if a.quiet {
        for i in &images {
            println!("{}", i.id);
        }
        return Ok(());
    }
    let mut rows = vec![];
    for img in &images {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        let digest = img
            .repo_digests
            .first()
            .and_then(|d| d.split('@').nth(1))
            .map(|d| {
                if a.no_trunc {
                    d.to_string()
                } else {
                    short_id(d)
                }
            })
            .unwrap_or_else(|| "<none>".into());
        let pairs: Vec<(String, String)> = if img.repo_tags.is_empty() {
            let repo = img
                .repo_digests
                .first()
                .and_then(|d| d.split('@').next())
                .unwrap_or("<none>");
            vec![(repo.to_string(), "<none>".into())]
        } else {
            img.repo_tags.iter().map(|t| split_tag(t)).collect()
        };
        for (repo, tag) in pairs {
            rows.push([repo, tag, digest.clone(), id.clone(), human_size(img.size)]);
        }
    }
    let mut head = vec!["IMAGE", "TAG"];
    if a.digests {
        head.push("DIGEST");
    }
    head.extend(["IMAGE ID", "SIZE"]);
    let cols: Vec<usize> = if a.digests {
        vec![0, 1, 2, 3, 4]
    } else {
        vec![0, 1, 3, 4]
    };
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([head[k].len()])
                .max()
                .unwrap_or(0)
                + 3
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (k, c) in cells.iter().enumerate() {
            if k + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}", w = widths[k]));
            }
        }
        println!("{s}");
    };
    line(head.clone());
    for r in &rows {
        line(cols.iter().map(|&c| r[c].as_str()).collect());
    }
    Ok(())
}
