//! The calls answered by short replies (`mmap`, `munmap`, sysctl reads)
//! decode them in place, and refuse what they refused before: an error
//! reply is its errno, a reply of the wrong kind or tag `EPROTO`, a
//! malformed frame the full decoder's errno.

use nommu::{Client, Transport};
use protocol::{decode_request, encode_reply, Errno, Reply, Sysctl, MAX_FRAME};

/// Answers every request with `reply`, its tag shifted by `tag_skew`, the
/// frame cut to `cut` bytes (if set).
struct Canned {
    reply: Reply,
    tag_skew: u32,
    cut: Option<usize>,
}

impl Transport for Canned {
    fn call(&self, request: &[u8], out: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let tag = decode_request(request).map_err(|e| e.errno())?.tag;
        let len = encode_reply(tag.wrapping_add(self.tag_skew), &self.reply, out);
        Ok(self.cut.map_or(len, |cut| cut.min(len)))
    }
}

fn client(reply: Reply) -> Client<Canned> {
    Client::new(Canned {
        reply,
        tag_skew: 0,
        cut: None,
    })
}

#[test]
fn short_answers_come_through() {
    assert_eq!(
        client(Reply::Mapped { addr: 0x8000_0000 }).mmap(0, 4096, 3, 0x22, -1, 0),
        Ok(0x8000_0000)
    );
    assert_eq!(client(Reply::Done).munmap(0x8000_0000, 4096), Ok(()));
    assert_eq!(
        client(Reply::Value(-7)).read_sysctl(Sysctl::NrTrimPages),
        Ok(-7)
    );
    assert_eq!(
        client(Reply::Cloned { pid: 3, ticket: 9 }).clone_process(0),
        Ok((3, 9))
    );
}

#[test]
fn errors_wrong_kinds_and_wrong_tags_are_refused_as_before() {
    assert_eq!(
        client(Reply::Error(Errno::ENOMEM)).mmap(0, 4096, 3, 0x22, -1, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        client(Reply::Done).mmap(0, 4096, 3, 0x22, -1, 0),
        Err(Errno::EPROTO)
    );
    // A whole reply that is not short at all.
    assert_eq!(client(Reply::Fd(3)).munmap(0, 4096), Err(Errno::EPROTO));
    let skewed = Client::new(Canned {
        reply: Reply::Done,
        tag_skew: 1,
        cut: None,
    });
    assert_eq!(skewed.munmap(0, 4096), Err(Errno::EPROTO));
}

#[test]
fn a_cut_reply_is_the_full_decoders_refusal() {
    for (cut, errno) in [(3, Errno::EBADMSG), (17, Errno::EBADMSG)] {
        let c = Client::new(Canned {
            reply: Reply::Mapped { addr: 1 << 40 },
            tag_skew: 0,
            cut: Some(cut),
        });
        assert_eq!(c.mmap(0, 4096, 3, 0x22, -1, 0), Err(errno), "cut at {cut}");
    }
}
