//! Writes romfs images in Linux's on-disk format with a layout chosen by
//! the test (genromfs's is readdir order): entries in the order added,
//! each directory's chain starting with `.` and `..` and laid out right
//! after the directory's header, as genromfs does. Bare-metal tests, which
//! cannot run genromfs, build their `/rom` with it.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

#[derive(Clone, Debug)]
enum Node {
    File { data: Vec<u8>, exec: bool },
    Dir(Vec<(String, Node)>),
    Symlink(String),
    HardLink(String),
}

/// A romfs image under construction.
#[derive(Clone, Debug)]
pub struct RomfsImage {
    volume: String,
    root: Vec<(String, Node)>,
}

const HARD: u32 = 0;
const DIR: u32 = 1;
const REG: u32 = 2;
const LNK: u32 = 3;
const EXEC: u32 = 8;

struct Item {
    name: String,
    kind: u32,
    exec: bool,
    data: Vec<u8>,
    /// Directory: index of the first item of its chain; hard link: the
    /// target's path (resolved after layout).
    spec_item: Option<usize>,
    link_path: Option<String>,
    next_item: Option<usize>,
    path: String,
    offset: u32,
}

fn pad16(n: usize) -> usize {
    (n + 15) & !15
}

fn header_len(name: &str) -> usize {
    16 + pad16(name.len() + 1)
}

impl RomfsImage {
    pub fn new(volume: &str) -> Self {
        Self {
            volume: volume.to_string(),
            root: Vec::new(),
        }
    }

    fn place(&mut self, path: &str, node: Node) -> &mut Self {
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let leaf = parts.pop().expect("empty path");
        let mut dir = &mut self.root;
        for part in parts {
            let at = match dir.iter().position(|(n, _)| n == part) {
                Some(at) => at,
                None => {
                    dir.push((part.to_string(), Node::Dir(Vec::new())));
                    dir.len() - 1
                }
            };
            dir = match &mut dir[at].1 {
                Node::Dir(entries) => entries,
                _ => panic!("{part} is not a directory"),
            };
        }
        dir.push((leaf.to_string(), node));
        self
    }

    /// A regular file (parent directories are made as needed).
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.place(
            path,
            Node::File {
                data: data.to_vec(),
                exec: false,
            },
        )
    }

    /// A regular file with the exec bit.
    pub fn exec_file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.place(
            path,
            Node::File {
                data: data.to_vec(),
                exec: true,
            },
        )
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.place(path, Node::Dir(Vec::new()))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.place(path, Node::Symlink(target.to_string()))
    }

    /// A hard link to the entry at `target` (a path from the root).
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.place(path, Node::HardLink(target.to_string()))
    }

    fn flatten(entries: &[(String, Node)], dir_path: &str, dir_item: usize, items: &mut Vec<Item>) {
        let parent_link = if dir_path.is_empty() {
            None
        } else {
            Some(dir_path.rsplit_once('/').map_or("", |(p, _)| p).to_string())
        };
        let mut chain = Vec::new();
        // "." of the root is the root directory itself; elsewhere a link.
        if dir_path.is_empty() {
            chain.push(dir_item);
        } else {
            items.push(Item::link(".", dir_path));
            chain.push(items.len() - 1);
        }
        items.push(Item::link("..", &parent_link.unwrap_or_default()));
        chain.push(items.len() - 1);
        if !dir_path.is_empty() {
            items[dir_item].spec_item = Some(chain[0]);
        }
        for (name, node) in entries {
            let path = if dir_path.is_empty() {
                name.clone()
            } else {
                alloc::format!("{dir_path}/{name}")
            };
            let mut item = Item::link(name, "");
            item.link_path = None;
            item.path = path.clone();
            match node {
                Node::File { data, exec } => {
                    item.kind = REG;
                    item.exec = *exec;
                    item.data = data.clone();
                }
                Node::Symlink(target) => {
                    item.kind = LNK;
                    item.data = target.as_bytes().to_vec();
                }
                Node::HardLink(target) => item.link_path = Some(target.clone()),
                Node::Dir(_) => {
                    item.kind = DIR;
                    item.exec = true;
                }
            }
            items.push(item);
            let at = items.len() - 1;
            chain.push(at);
            if let Node::Dir(children) = node {
                Self::flatten(children, &path, at, items);
            }
        }
        for pair in chain.windows(2) {
            items[pair[0]].next_item = Some(pair[1]);
        }
    }

    /// The image bytes, padded to a multiple of 1024 as genromfs pads.
    pub fn build(&self) -> Vec<u8> {
        let mut items = Vec::new();
        let mut root = Item::link(".", "");
        root.link_path = None;
        root.kind = DIR;
        root.exec = true;
        items.push(root);
        Self::flatten(&self.root, "", 0, &mut items);
        items[0].spec_item = Some(0);

        let mut offset = header_len(&self.volume);
        for item in &mut items {
            item.offset = offset as u32;
            offset += header_len(&item.name) + pad16(item.data.len());
        }
        let full = offset;
        let mut img = vec![0u8; (full + 1023) & !1023];
        img[..8].copy_from_slice(b"-rom1fs-");
        put(&mut img, 8, full as u32);
        img[16..16 + self.volume.len()].copy_from_slice(self.volume.as_bytes());
        let by_path = |p: &str| -> u32 {
            if p.is_empty() {
                return items[0].offset;
            }
            items
                .iter()
                .find(|i| i.path == p && i.kind != HARD)
                .unwrap_or_else(|| panic!("hard link target {p} not found"))
                .offset
        };
        for item in &items {
            let at = item.offset as usize;
            let next = item.next_item.map_or(0, |n| items[n].offset);
            let exec = if item.exec { EXEC } else { 0 };
            put(&mut img, at, next | exec | item.kind);
            let spec = match (&item.link_path, item.spec_item) {
                (Some(p), _) => by_path(p),
                (None, Some(s)) => items[s].offset,
                (None, None) => 0,
            };
            put(&mut img, at + 4, spec);
            put(&mut img, at + 8, item.data.len() as u32);
            img[at + 16..at + 16 + item.name.len()].copy_from_slice(item.name.as_bytes());
            let hl = header_len(&item.name);
            let sum = checksum(&img[at..at + hl]);
            put(&mut img, at + 12, 0u32.wrapping_sub(sum));
            img[at + hl..at + hl + item.data.len()].copy_from_slice(&item.data);
        }
        let sum = checksum(&img[..full.min(512)]);
        put(&mut img, 12, 0u32.wrapping_sub(sum));
        img
    }

    /// The image offset where the data of the regular file `path` starts.
    pub fn data_offset(image: &[u8], path: &str) -> Option<u32> {
        crate::romfs::Romfs::mount(image, crate::MountPoint::new("/x", (0, 0)).ok()?)
            .ok()?
            .data_offset(path)
    }
}

impl Item {
    fn link(name: &str, target: &str) -> Self {
        Item {
            name: name.to_string(),
            kind: HARD,
            exec: false,
            data: Vec::new(),
            spec_item: None,
            link_path: Some(target.to_string()),
            next_item: None,
            path: String::new(),
            offset: 0,
        }
    }
}

fn put(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// romfs's checksum: the 32-bit sum of big-endian words.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.chunks(4).fold(0u32, |s, w| {
        let mut word = [0u8; 4];
        word[..w.len()].copy_from_slice(w);
        s.wrapping_add(u32::from_be_bytes(word))
    })
}
