//! The `execute_kasm_command` results shown in `docs/TOOLS.md`: what a model reads in the text
//! content. Each example was captured from `kasm-mcp demo`, and an integration test
//! (`tests/it/exec_text.rs`) runs it against the demo again and compares every block (all
//! but the measured duration), so the documentation cannot drift from the server.

use std::fmt::Write as _;

/// The tool whose documentation section ends with these examples.
pub const TOOL: &str = "execute_kasm_command";

/// One documented call: its arguments besides `kasm_id`, and the text blocks it returned.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub title: &'static str,
    /// The arguments as a JSON object text, without `kasm_id`.
    pub arguments: &'static str,
    pub content: &'static [&'static str],
}

pub const EXAMPLES: &[Example] = &[
    Example {
        title: "A command that fails",
        arguments: r#"{"command": "printf 'line 1\\nline 2\\n'; cat /no/such/file"}"#,
        content: &[
            "Exit code: 1 (non-zero: the command reported a failure)\nDuration: 12 ms",
            "stdout (14 bytes):\nline 1\nline 2\n",
            "stderr (46 bytes):\ncat: /no/such/file: No such file or directory\n",
        ],
    },
    Example {
        title: "Output cut at max_output_bytes",
        arguments: r#"{"command": "seq 1 100000", "max_output_bytes": 64}"#,
        content: &[
            "Exit code: 0\nDuration: 19 ms",
            "stdout (more than 64 bytes; only the first 64 are shown):\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n2\n… more omitted: output is cut at max_output_bytes (64 bytes) and the rest was not kept. To see more, run the command again with a larger max_output_bytes (this server allows up to 1048576), or send its output to a file (`cmd > /tmp/out.txt 2>&1`) and read it in parts (read_kasm_file, or `tail -c 65536 /tmp/out.txt` and `grep` in another command).",
            "stderr: empty",
        ],
    },
];

/// The documentation section: how a result reads, then each example.
pub fn markdown() -> String {
    let mut out = String::from(
        "\n### What the model reads\n\nThe text content of a result is written for a model, not a JSON dump: a first block with the exit code (and what a code such as 127 or 137 means) and the duration, then one block for stdout and one for stderr, each as plain text with its size. A stream cut at `max_output_bytes` ends with a line saying so and how to get the rest; output that is not UTF-8 is shown with U+FFFD (or, for binary data, described) and its exact bytes are in `structuredContent` as base64. A timeout, and processes left holding the output, are stated in the first block. `structuredContent` keeps the machine form (the fields above), so programs read that. A command that exits non-zero is a normal result (`isError: false`) with its exit code; `isError: true` means the command was refused or its result could not be collected (for example, when it removed the wrapper's own files in `/tmp`, the error says so).\n",
    );
    for example in EXAMPLES {
        let _ = writeln!(
            out,
            "\n#### {}\n\nArguments (besides `kasm_id`): `{}`",
            example.title, example.arguments
        );
        for (i, block) in example.content.iter().enumerate() {
            let _ = write!(
                out,
                "\nText block {}:\n\n````text\n{}\n````\n",
                i + 1,
                block.trim_end_matches('\n')
            );
        }
    }
    out
}
