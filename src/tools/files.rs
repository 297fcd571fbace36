//! File tools: `read_kasm_file`, `write_kasm_file`, `list_kasm_files`. Bytes travel through
//! the relay (the wrapper uploads a file, or downloads the content and renames it into
//! place); paths are checked here against the allowed roots and again with `realpath` in
//! the session.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::ToolDeps;
use super::access::{SessionRef, denied, find_session, require_running};
use super::roots::{CheckedPath, check_file_path};
use super::schema::{self, parse_args};
use super::support::{FnTool, ToolError, ToolResult, handler};
use super::transfer::{RoundTrip, container_error, download_ticket, relay, round_trip};
use crate::config::PolicyConfig;
use crate::kasm::KasmId;
use crate::mcp::{CallContext, TaskSupport, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::relay::Purpose;
use crate::relay::frame::{parse_list, parse_read, parse_write};
use crate::relay::wrapper::{Job, PathJob, WriteJob};

/// How long a file transfer may take inside the session.
const TRANSFER_WAIT: Duration = Duration::from_secs(120);
/// Default and largest number of directory entries listed.
const DEFAULT_ENTRIES: usize = 1000;
const MAX_ENTRIES: usize = 10_000;

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        FnTool::shared(read_spec(&deps.policy), deps, handler!(read)),
        FnTool::shared(write_spec(deps), deps, handler!(write)),
        FnTool::shared(list_spec(&deps.policy), deps, handler!(list)),
    ]
}

/// Describe the path parameter `name` with this server's allowed roots.
fn with_path_description(schema: Value, policy: &PolicyConfig, name: &str, what: &str) -> Value {
    let description = format!(
        "Absolute path of the {what} inside the session; must be inside the allowed roots ({}). No `..` components.",
        policy.allowed_roots.join(", ")
    );
    schema::with_keyword(schema, name, "description", json!(description))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A read or list job on the checked path (the tickets are added by `round_trip`): the
/// wrapper re-checks its `realpath` against the same roots the path was checked against.
fn path_job(checked: &CheckedPath, max: usize) -> PathJob {
    PathJob {
        path: checked.path.clone(),
        roots: checked.roots.clone(),
        max,
    }
}

async fn running_session(
    deps: &ToolDeps,
    ctx: &CallContext,
    kasm_id: &KasmId,
) -> Result<SessionRef, ToolError> {
    let session = find_session(deps, ctx, kasm_id).await?;
    require_running(&session)?;
    Ok(session)
}

// ---- read_kasm_file ------------------------------------------------------------------------

const READ: &str = "read_kasm_file";

/// How `read_kasm_file` returns the content.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
enum ReadEncoding {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "base64")]
    Base64,
}

impl ReadEncoding {
    fn as_str(self) -> &'static str {
        match self {
            ReadEncoding::Auto => "auto",
            ReadEncoding::Utf8 => "utf-8",
            ReadEncoding::Base64 => "base64",
        }
    }
}

/// How file content is carried in a tool result or argument.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
enum ContentEncoding {
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "base64")]
    Base64,
}

impl ContentEncoding {
    fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Utf8 => "utf-8",
            ContentEncoding::Base64 => "base64",
        }
    }
}

/// Arguments of `read_kasm_file` (the server's policy adds the allowed roots and the size
/// limit in [`read_input`]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    kasm_id: KasmId,
    /// Absolute path of the file to read inside the session.
    file_path: String,
    /// Refuse files larger than this many bytes (the server's policy.max_file_bytes is the
    /// default and the maximum).
    #[serde(default)]
    #[schemars(range(min = 1))]
    max_bytes: Option<usize>,
    /// How to return the content: auto gives UTF-8 text when the file is valid UTF-8, else
    /// base64; utf-8 fails on binary files; base64 always.
    #[serde(default)]
    encoding: ReadEncoding,
}

fn read_input(policy: &PolicyConfig) -> Value {
    let schema = with_path_description(
        schema::input::<ReadArgs>(),
        policy,
        "file_path",
        "file to read",
    );
    let schema = schema::with_default(schema, "max_bytes", json!(policy.max_file_bytes));
    schema::with_keyword(schema, "max_bytes", "maximum", json!(policy.max_file_bytes))
}

/// Result of `read_kasm_file` (built in [`read`]).
#[derive(Debug, Serialize, JsonSchema)]
#[allow(dead_code)]
struct ReadResult {
    kasm_id: KasmId,
    file_path: String,
    /// Size of the file in bytes.
    size: usize,
    /// SHA-256 of the file's bytes, in hex.
    sha256: String,
    /// How content is given.
    encoding: ContentEncoding,
    content: String,
}

fn read_spec(policy: &PolicyConfig) -> ToolSpec {
    ToolSpec::builder(READ, Role::Viewer)
        .title("Read a file from a session")
        .description("Read a file inside a running Kasm session and return its content (UTF-8 text, or base64 for binary files) with its size and SHA-256. Use it to look at configuration, logs, results or any file a command produced. The path must be inside the server's allowed roots (symlinks are resolved and re-checked in the session). Costs one Kasm exec call and one upload of the file through the relay; files above max_bytes are refused without transferring them.")
        .input_schema(read_input(policy))
        .output_schema(schema::output::<ReadResult>())
        .annotations(ToolAnnotations::read_only())
        .task_support(TaskSupport::Optional)
        .build()
}

pub(super) async fn read(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: ReadArgs = parse_args(READ, args)?;
    let policy = &deps.policy;
    let checked = check_file_path(&deps, &ctx, &args.file_path).await?;
    let path = checked.path.clone();
    let max = args.max_bytes.unwrap_or(policy.max_file_bytes);
    if max == 0 || max > policy.max_file_bytes {
        return Err(ToolError::new(format!(
            "max_bytes must be between 1 and {} (policy.max_file_bytes)",
            policy.max_file_bytes
        )));
    }
    let encoding = args.encoding.as_str();
    relay(&deps, READ)?;
    let session = running_session(&deps, &ctx, &args.kasm_id).await?;
    let frame = round_trip(
        &deps,
        &ctx,
        &session,
        RoundTrip {
            job: Job::Read(path_job(&checked, max)),
            purpose: Purpose::FileUpload,
            cap: max.saturating_add(256),
            download: None,
            user: None,
            wait: TRANSFER_WAIT,
            what: "reading the file",
        },
    )
    .await?;
    let bytes = parse_read(&frame)?.map_err(|e| container_error(&ctx, &path, e))?;
    let text = match encoding {
        "base64" => None,
        _ => std::str::from_utf8(&bytes).ok().map(str::to_string),
    };
    if encoding == "utf-8" && text.is_none() {
        return Err(ToolError::new(format!(
            "{path} is not valid UTF-8 text: read it with encoding: base64"
        )));
    }
    let (encoding, content) = match text {
        Some(t) => ("utf-8", t),
        None => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&bytes),
        ),
    };
    let sha256 = sha256_hex(&bytes);
    let text = super::files_text::read(&path, bytes.len(), &sha256, encoding, &content);
    Ok(ToolOutput::structured_with_text(
        json!({
            "kasm_id": session.kasm_id,
            "file_path": path,
            "size": bytes.len(),
            "sha256": sha256,
            "encoding": encoding,
            "content": content,
        }),
        text,
    ))
}

// ---- write_kasm_file -----------------------------------------------------------------------

const WRITE: &str = "write_kasm_file";

/// Room in a request body for everything around the base64 content (JSON-RPC envelope,
/// the other arguments, escaping of the path).
const REQUEST_OVERHEAD_BYTES: usize = 64 * 1024;

/// The largest content one `write_kasm_file` call can carry: it arrives base64-encoded (4
/// bytes per 3) inside one MCP request body, which `server.max_body_bytes` caps, and it is
/// also capped by `policy.max_file_bytes`.
pub fn max_write_bytes(policy: &PolicyConfig, max_request_bytes: usize) -> usize {
    let fits_in_request = max_request_bytes
        .saturating_sub(REQUEST_OVERHEAD_BYTES)
        .saturating_mul(3)
        / 4;
    policy.max_file_bytes.min(fits_in_request)
}

/// Which setting makes [`max_write_bytes`] what it is, phrased for the model and operator.
fn write_limit_reason(policy: &PolicyConfig, max_request_bytes: usize) -> String {
    format!(
        "the smaller of policy.max_file_bytes ({}) and what fits base64-encoded in one request of at most server.max_body_bytes ({max_request_bytes}, less {} KiB for the rest of the request, times 3/4)",
        policy.max_file_bytes,
        REQUEST_OVERHEAD_BYTES / 1024,
    )
}

fn yes() -> bool {
    true
}

/// Arguments of `write_kasm_file` (the server adds the allowed roots and the size limit in
/// [`write_input`]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    kasm_id: KasmId,
    /// Absolute path of the file to write inside the session.
    file_path: String,
    /// The new file content: text, or base64 when encoding is base64 (for binary files).
    content: String,
    /// How content is given: utf-8 text or base64.
    #[serde(default)]
    encoding: ContentEncoding,
    /// Create missing parent directories (like mkdir -p).
    #[serde(default = "yes")]
    create_parents: bool,
    /// Octal permission bits such as "0644" or "755". Default: keep an existing regular
    /// file's mode, else the session's umask default (usually 644); a symlink at the path is
    /// replaced, never its mode copied.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-7]{3,4}$"))]
    mode: Option<String>,
}

fn write_input(deps: &ToolDeps) -> Value {
    let policy = &deps.policy;
    let schema = with_path_description(
        schema::input::<WriteArgs>(),
        policy,
        "file_path",
        "file to write",
    );
    let content = format!(
        "The new file content: text, or base64 when encoding is base64 (for binary files). At most {} bytes once decoded (larger content is refused: write it in parts).",
        max_write_bytes(policy, deps.max_request_bytes)
    );
    schema::with_keyword(schema, "content", "description", json!(content))
}

/// Result of `write_kasm_file` (built in [`write`]).
#[derive(Debug, Serialize, JsonSchema)]
#[allow(dead_code)]
struct WriteResult {
    kasm_id: KasmId,
    file_path: String,
    /// Bytes written.
    size: usize,
    /// SHA-256 of the content sent, in hex.
    sha256: String,
    /// True when the session computed the same SHA-256 after writing.
    verified: bool,
}

fn write_spec(deps: &ToolDeps) -> ToolSpec {
    let description = format!(
        "Create or replace a file inside a running Kasm session, atomically (written to a temporary file in the same directory, then renamed), and report its size and SHA-256 as verified in the session. Use it to put scripts, configuration or data into the session; binary content goes as base64. The path must be inside the server's allowed roots. Overwrites an existing file. Costs one Kasm exec call and one download of the content through the relay. Content is limited to {} bytes per call: {}.",
        max_write_bytes(&deps.policy, deps.max_request_bytes),
        write_limit_reason(&deps.policy, deps.max_request_bytes),
    );
    ToolSpec::builder(WRITE, Role::Operator)
        .title("Write a file in a session")
        .description(description)
        .input_schema(write_input(deps))
        .output_schema(schema::output::<WriteResult>())
        .annotations(ToolAnnotations::writes().destructive().idempotent())
        .task_support(TaskSupport::Optional)
        .build()
}

fn valid_mode(mode: &str) -> bool {
    (3..=4).contains(&mode.len()) && mode.chars().all(|c| ('0'..='7').contains(&c))
}

async fn write(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: WriteArgs = parse_args(WRITE, args)?;
    let policy = &deps.policy;
    let checked = check_file_path(&deps, &ctx, &args.file_path).await?;
    let path = checked.path.clone();
    if path == "/"
        || checked
            .roots
            .iter()
            .any(|r| r.trim_end_matches('/') == path)
    {
        return Err(denied(
            &ctx,
            "path",
            format!("{path} is an allowed root directory, not a file: give a file path inside it"),
        ));
    }
    let bytes = match args.encoding.as_str() {
        "utf-8" => Bytes::from(args.content.into_bytes()),
        "base64" => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(args.content.trim())
                .map_err(|e| ToolError::new(format!("content is not valid base64: {e}")))?,
        ),
        _ => return Err(ToolError::new("encoding must be utf-8 or base64")),
    };
    let limit = max_write_bytes(policy, deps.max_request_bytes);
    if bytes.len() > limit {
        return Err(ToolError::new(format!(
            "content is {} bytes, more than the {limit} this server accepts in one write: {}. Write the file in parts (then join them with execute_kasm_command, e.g. cat part1 part2 > file)",
            bytes.len(),
            write_limit_reason(policy, deps.max_request_bytes),
        )));
    }
    if let Some(mode) = args.mode.as_deref().filter(|m| !valid_mode(m)) {
        return Err(ToolError::new(format!(
            "mode {mode:?} is not octal permission bits: use e.g. \"0644\" or \"755\""
        )));
    }
    let relay = relay(&deps, WRITE)?.clone();
    let session = running_session(&deps, &ctx, &args.kasm_id).await?;
    let size = bytes.len();
    let sha = sha256_hex(&bytes);
    let download = download_ticket(&relay, &ctx, &session, bytes, TRANSFER_WAIT).await?;
    let job = WriteJob {
        path: path.clone(),
        roots: checked.roots.clone(),
        size,
        create_parents: args.create_parents,
        mode: args.mode.clone(),
    };
    let frame = round_trip(
        &deps,
        &ctx,
        &session,
        RoundTrip {
            job: Job::Write(job),
            purpose: Purpose::WriteStatus,
            cap: 1024,
            download: Some(&download),
            user: None,
            wait: TRANSFER_WAIT,
            what: "writing the file",
        },
    )
    .await?;
    drop(download);
    let remote_sha = parse_write(&frame)?.map_err(|e| container_error(&ctx, &path, e))?;
    if remote_sha.as_deref().is_some_and(|r| r != sha) {
        return Err(ToolError::new(format!(
            "{path} was written but its SHA-256 in the session differs from the content sent; write it again"
        )));
    }
    let text = super::files_text::written(&path, size, &sha, remote_sha.is_some());
    Ok(ToolOutput::structured_with_text(
        json!({
            "kasm_id": session.kasm_id,
            "file_path": path,
            "size": size,
            "sha256": sha,
            "verified": remote_sha.is_some(),
        }),
        text,
    ))
}

// ---- list_kasm_files -----------------------------------------------------------------------

const LIST: &str = "list_kasm_files";

/// Arguments of `list_kasm_files` (the server adds the allowed roots in [`list_input`]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    kasm_id: KasmId,
    /// Absolute path of the directory to list inside the session.
    path: String,
    /// Most entries to return; truncated: true when there were more.
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_ENTRIES))]
    max_entries: Option<usize>,
}

fn list_input(policy: &PolicyConfig) -> Value {
    let schema = with_path_description(
        schema::input::<ListArgs>(),
        policy,
        "path",
        "directory to list",
    );
    schema::with_default(schema, "max_entries", json!(DEFAULT_ENTRIES))
}

/// The kind of a directory entry.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// One directory entry.
#[derive(Debug, Serialize, JsonSchema)]
#[allow(dead_code)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    kind: EntryKind,
    /// Size in bytes.
    size: Option<u64>,
}

/// Result of `list_kasm_files` (built in [`list`]).
#[derive(Debug, Serialize, JsonSchema)]
#[allow(dead_code)]
struct ListResult {
    kasm_id: KasmId,
    path: String,
    /// Sorted by name, hidden files included.
    entries: Vec<Entry>,
    /// There were more than max_entries entries.
    truncated: bool,
}

fn list_spec(policy: &PolicyConfig) -> ToolSpec {
    ToolSpec::builder(LIST, Role::Viewer)
        .title("List a directory in a session")
        .description("List the entries of a directory inside a running Kasm session: name, type (file, directory, symlink, other) and size in bytes, sorted by name, hidden files included. Use it to find files before reading or writing them. The path must be inside the server's allowed roots. Costs one Kasm exec call and one small upload through the relay.")
        .input_schema(list_input(policy))
        .output_schema(schema::output::<ListResult>())
        .annotations(ToolAnnotations::read_only())
        .task_support(TaskSupport::Optional)
        .build()
}

async fn list(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: ListArgs = parse_args(LIST, args)?;
    let checked = check_file_path(&deps, &ctx, &args.path).await?;
    let path = checked.path.clone();
    let max = args.max_entries.unwrap_or(DEFAULT_ENTRIES);
    if max == 0 || max > MAX_ENTRIES {
        return Err(ToolError::new(format!(
            "max_entries must be between 1 and {MAX_ENTRIES}"
        )));
    }
    relay(&deps, LIST)?;
    let session = running_session(&deps, &ctx, &args.kasm_id).await?;
    let frame = round_trip(
        &deps,
        &ctx,
        &session,
        RoundTrip {
            job: Job::List(path_job(&checked, max)),
            purpose: Purpose::Listing,
            cap: max.saturating_mul(4200).saturating_add(256),
            download: None,
            user: None,
            wait: TRANSFER_WAIT,
            what: "listing the directory",
        },
    )
    .await?;
    let (entries, truncated) = parse_list(&frame)?.map_err(|e| container_error(&ctx, &path, e))?;
    let text = super::files_text::listing(&path, &entries, truncated);
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({"name": e.name, "type": e.kind, "size": e.size}))
        .collect();
    Ok(ToolOutput::structured_with_text(
        json!({
            "kasm_id": session.kasm_id,
            "path": path,
            "entries": entries,
            "truncated": truncated,
        }),
        text,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_limit_is_what_fits_base64_in_one_request_body() {
        let policy = PolicyConfig::default();
        // The defaults: a 4 MiB body carries (4 MiB - 64 KiB) * 3 / 4 decoded bytes.
        assert_eq!(
            max_write_bytes(&policy, 4 * 1024 * 1024),
            (4 * 1024 * 1024 - 64 * 1024) * 3 / 4
        );
        // A large body leaves policy.max_file_bytes as the limit.
        assert_eq!(
            max_write_bytes(&policy, 64 * 1024 * 1024),
            policy.max_file_bytes
        );
        // Smaller than the overhead: nothing fits.
        assert_eq!(max_write_bytes(&policy, 1000), 0);
        // Whatever fits by the rule, base64 plus the overhead stays within the body limit.
        let body = 4 * 1024 * 1024;
        let limit = max_write_bytes(&policy, body);
        assert!(limit.div_ceil(3) * 4 + REQUEST_OVERHEAD_BYTES <= body + 4);
    }

    #[test]
    fn modes() {
        for ok in ["644", "0644", "0755", "4755"] {
            assert!(valid_mode(ok), "{ok}");
        }
        for bad in ["", "64", "0888", "u+x", "07777"] {
            assert!(!valid_mode(bad), "{bad}");
        }
    }
}
