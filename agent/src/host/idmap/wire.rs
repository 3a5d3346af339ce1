//! What crosses the helper's pipes: length-prefixed fields, big-endian, in buffers that are
//! wiped when dropped and sized up front (no reallocation leaves a copy of a secret behind).

use std::collections::BTreeMap;
use std::io::{self, Read};

use zeroize::Zeroizing;

use crate::drivers::FileContent;
use crate::host::atomic::{Contents, Current};
use crate::secrets::SecretBytes;

/// The most the helper reads or answers: every file of a volume at its largest.
const LIMIT: usize = 256 * 1024 * 1024;

type Access = (u32, (Option<u32>, Option<u32>));

/// One frame off `reader`: its length (u32), then that many bytes, into a buffer sized up
/// front. `None` when `reader` ends before a frame begins (the other side closed its end).
pub(super) fn read_frame(mut reader: impl Read) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(cut_short()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > LIMIT {
        return Err(io::Error::other("the volume helper's message is too large"));
    }
    let mut frame = Zeroizing::new(vec![0u8; len]);
    reader.read_exact(&mut frame).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            cut_short()
        } else {
            e
        }
    })?;
    Ok(Some(frame))
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the volume helper's message is cut short",
    )
}

/// A frame of `parts` one after the other, its length first.
fn frame(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(4 + len));
    put_u32(&mut out, u32::try_from(len).unwrap_or(u32::MAX));
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// A request: what to do (`op`), to which folder, with what (`payload`: a write's request).
pub(super) fn request(op: u8, dir: &[u8], payload: &[u8]) -> Zeroizing<Vec<u8>> {
    let dir_len = u32::try_from(dir.len()).unwrap_or(u32::MAX).to_be_bytes();
    frame(&[&[op], &dir_len, dir, payload])
}

/// A request's op, folder and payload.
pub(super) fn parse_request(frame: &[u8]) -> io::Result<(u8, &[u8], &[u8])> {
    let mut fields = Fields(frame);
    let op = fields.u8()?;
    let dir = fields.bytes()?;
    Ok((op, dir, fields.0))
}

/// An answer: what was asked for, or why it could not be done.
pub(super) fn answer(result: Result<&[u8], &str>) -> Zeroizing<Vec<u8>> {
    match result {
        Ok(body) => frame(&[&[0], body]),
        Err(why) => frame(&[&[1], why.as_bytes()]),
    }
}

/// An answer's body, or the helper's reason as an error.
pub(super) fn parse_answer(frame: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
    match frame.split_first() {
        Some((0, body)) => Ok(Zeroizing::new(body.to_vec())),
        Some((_, why)) => Err(io::Error::other(String::from_utf8_lossy(why).into_owned())),
        None => Err(cut_short()),
    }
}

fn sized(files: usize, bytes: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Vec::with_capacity(64 + files * 64 + bytes))
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_opt(out: &mut Vec<u8>, value: Option<u32>) {
    out.push(u8::from(value.is_some()));
    put_u32(out, value.unwrap_or(0));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

fn put_access(out: &mut Vec<u8>, (mode, (uid, gid)): Access) {
    put_u32(out, mode);
    put_opt(out, uid);
    put_opt(out, gid);
}

pub(super) fn write_request(
    mount: Access,
    data: Access,
    files: &[FileContent],
) -> Zeroizing<Vec<u8>> {
    let bytes = files
        .iter()
        .map(|f| f.path.len() + f.bytes.expose().len())
        .sum();
    let mut out = sized(files.len(), bytes);
    put_access(&mut out, mount);
    put_access(&mut out, data);
    put_u32(&mut out, u32::try_from(files.len()).unwrap_or(u32::MAX));
    for file in files {
        put_bytes(&mut out, file.path.as_bytes());
        put_u32(&mut out, file.mode);
        put_opt(&mut out, file.uid);
        put_opt(&mut out, file.gid);
        put_bytes(&mut out, file.bytes.expose());
    }
    out
}

pub(super) fn encode_contents(contents: Option<&Contents>) -> Zeroizing<Vec<u8>> {
    let Some(contents) = contents else {
        return Zeroizing::new(vec![0]);
    };
    let bytes = contents
        .files
        .iter()
        .map(|(path, c)| path.len() + c.bytes.expose().len())
        .sum::<usize>()
        + contents.data.as_ref().map_or(0, String::len);
    let mut out = sized(contents.files.len(), bytes);
    out.push(1);
    out.push(u8::from(contents.data.is_some()));
    put_bytes(
        &mut out,
        contents.data.as_deref().unwrap_or_default().as_bytes(),
    );
    put_u32(
        &mut out,
        u32::try_from(contents.files.len()).unwrap_or(u32::MAX),
    );
    for (path, current) in &contents.files {
        put_bytes(&mut out, path.as_bytes());
        put_u32(&mut out, current.mode);
        put_u32(&mut out, current.uid);
        put_u32(&mut out, current.gid);
        put_bytes(&mut out, current.bytes.expose());
    }
    out
}

/// Reads fields off a message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(cut_short());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().unwrap_or_default();
        Ok(u32::from_be_bytes(bytes))
    }
    fn opt(&mut self) -> io::Result<Option<u32>> {
        let some = self.u8()? != 0;
        let value = self.u32()?;
        Ok(some.then_some(value))
    }
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn text(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| io::Error::other("the volume helper's message holds a bad name"))
    }
    fn secret(&mut self) -> io::Result<SecretBytes> {
        Ok(SecretBytes::new(self.bytes()?.to_vec()))
    }
    fn access(&mut self) -> io::Result<Access> {
        Ok((self.u32()?, (self.opt()?, self.opt()?)))
    }
}

pub(super) fn parse_write(message: &[u8]) -> io::Result<(Access, Access, Vec<FileContent>)> {
    let mut fields = Fields(message);
    let mount = fields.access()?;
    let data = fields.access()?;
    let count = fields.u32()?;
    let mut files = Vec::new();
    for _ in 0..count {
        files.push(FileContent {
            path: fields.text()?,
            mode: fields.u32()?,
            uid: fields.opt()?,
            gid: fields.opt()?,
            bytes: fields.secret()?,
        });
    }
    Ok((mount, data, files))
}

pub(super) fn contents(message: &[u8]) -> io::Result<Option<Contents>> {
    let mut fields = Fields(message);
    if fields.u8()? == 0 {
        return Ok(None);
    }
    let has_data = fields.u8()? != 0;
    let data = fields.text()?;
    let count = fields.u32()?;
    let mut files = BTreeMap::new();
    for _ in 0..count {
        let path = fields.text()?;
        let mode = fields.u32()?;
        let uid = fields.u32()?;
        let gid = fields.u32()?;
        let bytes = fields.secret()?;
        files.insert(
            path,
            Current {
                bytes,
                mode,
                uid,
                gid,
            },
        );
    }
    Ok(Some(Contents {
        data: has_data.then_some(data),
        files,
    }))
}
