//! Expected trees are what `@rocket.chat/message-parser` 0.32 returns for the same text (with
//! Rocket.Chat's default server options); most inputs come from its own test suite.

use serde_json::{Value, json};

use super::*;

/// `(message, md Rocket.Chat stores for it)`
const CASES: &[(&str, &str)] = &[
    // paragraphs and line breaks
    (
        "free text, with comma",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"free text, with comma"}]}]"#,
    ),
    (
        "test\n\ntest2",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"test"}]},{"type":"LINE_BREAK"},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"test2"}]}]"#,
    ),
    (
        "line one\nline two",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"line one"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"line two"}]}]"#,
    ),
    (
        "a\r\nb",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"a\r"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"b"}]}]"#,
    ),
    ("\n", r#"[{"type":"LINE_BREAK"}]"#),
    (
        "   ",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"   "}]}]"#,
    ),
    // emphasis
    (
        "*bold*",
        r#"[{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"bold"}]}]}]"#,
    ),
    (
        "**bold**",
        r#"[{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"bold"}]}]}]"#,
    ),
    (
        "_italic_",
        r#"[{"type":"PARAGRAPH","value":[{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":"italic"}]}]}]"#,
    ),
    (
        "__italic__",
        r#"[{"type":"PARAGRAPH","value":[{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":"italic"}]}]}]"#,
    ),
    (
        "~strike~",
        r#"[{"type":"PARAGRAPH","value":[{"type":"STRIKE","value":[{"type":"PLAIN_TEXT","value":"strike"}]}]}]"#,
    ),
    (
        "~~strike~~",
        r#"[{"type":"PARAGRAPH","value":[{"type":"STRIKE","value":[{"type":"PLAIN_TEXT","value":"strike"}]}]}]"#,
    ),
    (
        "plain **__~~strikeitalicbold~~__**",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"plain "},{"type":"BOLD","value":[{"type":"ITALIC","value":[{"type":"STRIKE","value":[{"type":"PLAIN_TEXT","value":"strikeitalicbold"}]}]}]}]}]"#,
    ),
    (
        "He said _Hello_ to her",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"He said "},{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":"Hello"}]},{"type":"PLAIN_TEXT","value":" to her"}]}]"#,
    ),
    (
        "He was a**nn**oyed",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"He was a"},{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"nn"}]},{"type":"PLAIN_TEXT","value":"oyed"}]}]"#,
    ),
    (
        "some_snake_case_text and some __italic__ text",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"some_snake_case_text and some "},{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":"italic"}]},{"type":"PLAIN_TEXT","value":" text"}]}]"#,
    ),
    (
        "__italic__non",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"__italic__non"}]}]"#,
    ),
    (
        "___Hello___",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"_"},{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":"Hello"}]},{"type":"PLAIN_TEXT","value":"_"}]}]"#,
    ),
    (
        "**Hello*",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"*"},{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"Hello"}]}]}]"#,
    ),
    (
        "*Hello",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"*Hello"}]}]"#,
    ),
    (
        "* *",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"* *"}]}]"#,
    ),
    (
        "*test :smile: test*",
        r#"[{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"test "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"},{"type":"PLAIN_TEXT","value":" test"}]}]}]"#,
    ),
    (
        "_ @guilherme_gazzo_ _",
        r#"[{"type":"PARAGRAPH","value":[{"type":"ITALIC","value":[{"type":"PLAIN_TEXT","value":" "},{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"guilherme_gazzo_"}},{"type":"PLAIN_TEXT","value":" "}]}]}]"#,
    ),
    (
        "x *😀@x*",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"x "},{"type":"BOLD","value":[{"type":"EMOJI","unicode":"😀"},{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"x"}}]}]}]"#,
    ),
    (
        "**bold ~~and strike~~** **not bold ~~but strike** ~~ not strike~~",
        r#"[{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"bold "},{"type":"STRIKE","value":[{"type":"PLAIN_TEXT","value":"and strike"}]}]},{"type":"PLAIN_TEXT","value":" **not bold "},{"type":"STRIKE","value":[{"type":"PLAIN_TEXT","value":"but strike** "}]},{"type":"PLAIN_TEXT","value":" not strike~~"}]}]"#,
    ),
    // inline code and code blocks
    (
        "run `npm test` now",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"run "},{"type":"INLINE_CODE","value":{"type":"PLAIN_TEXT","value":"npm test"}},{"type":"PLAIN_TEXT","value":" now"}]}]"#,
    ),
    (
        "empty `` ticks",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"empty `` ticks"}]}]"#,
    ),
    (
        "```javascript\nconsole.log(1);\n```",
        r#"[{"type":"CODE","language":"javascript","value":[{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":"console.log(1);"}}]}]"#,
    ),
    (
        "```\ncode\n\n\n```",
        r#"[{"type":"CODE","language":"none","value":[{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":"code"}},{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":""}},{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":""}}]}]"#,
    ),
    (
        "  ```\ncode\n```",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"  ```"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"code"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"```"}]}]"#,
    ),
    (
        "```\n# code\n**code**\n```",
        r##"[{"type":"CODE","language":"none","value":[{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":"# code"}},{"type":"CODE_LINE","value":{"type":"PLAIN_TEXT","value":"**code**"}}]}]"##,
    ),
    // links
    (
        "[title](https://rocket.chat)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://rocket.chat"},"label":[{"type":"PLAIN_TEXT","value":"title"}]}}]}]"#,
    ),
    (
        "[](https://rocket.chat)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://rocket.chat"},"label":[{"type":"PLAIN_TEXT","value":"https://rocket.chat"}]}}]}]"#,
    ),
    (
        "[**title**](https://rocket.chat)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://rocket.chat"},"label":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"title"}]}]}}]}]"#,
    ),
    (
        "<https://domain.com|Test>",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://domain.com"},"label":[{"type":"PLAIN_TEXT","value":"Test"}]}}]}]"#,
    ),
    (
        "https://rocket.chat/test?search=test look at this",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://rocket.chat/test?search=test"},"label":[{"type":"PLAIN_TEXT","value":"https://rocket.chat/test?search=test"}]}},{"type":"PLAIN_TEXT","value":" look at this"}]}]"#,
    ),
    (
        "google.com",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"//google.com"},"label":[{"type":"PLAIN_TEXT","value":"google.com"}]}}]}]"#,
    ),
    (
        "rocket.chat:8080",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"rocket.chat:8080"},"label":[{"type":"PLAIN_TEXT","value":"rocket.chat:8080"}]}}]}]"#,
    ),
    (
        "go to https://www.google.com.",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"go to "},{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://www.google.com"},"label":[{"type":"PLAIN_TEXT","value":"https://www.google.com"}]}},{"type":"PLAIN_TEXT","value":"."}]}]"#,
    ),
    (
        "https://77.77",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"https://77.77"}]}]"#,
    ),
    (
        "rocket.chattt/url_path",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"rocket.chattt/url_path"}]}]"#,
    ),
    (
        "http://📙.la/❤️",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"http://📙.la/❤️"},"label":[{"type":"PLAIN_TEXT","value":"http://📙.la/❤️"}]}}]}]"#,
    ),
    (
        "([Github Issue: #24929](https://github.com/RocketChat/Rocket.Chat/issues/24929))",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"("},{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"https://github.com/RocketChat/Rocket.Chat/issues/24929"},"label":[{"type":"PLAIN_TEXT","value":"Github Issue: #24929"}]}},{"type":"PLAIN_TEXT","value":")"}]}]"#,
    ),
    (
        "the [Jira [Task] parentheses not working](rocket.chat)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"the "},{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"rocket.chat"},"label":[{"type":"PLAIN_TEXT","value":"Jira [Task] parentheses not working"}]}}]}]"#,
    ),
    (
        "![logo](https://rocket.chat/logo.png)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"IMAGE","value":{"src":{"type":"PLAIN_TEXT","value":"https://rocket.chat/logo.png"},"label":{"type":"PLAIN_TEXT","value":"logo"}}}]}]"#,
    ),
    // e-mail and phone numbers
    (
        "Joe's email is joe@joe.com. Try emailing him",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"Joe's email is "},{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"mailto:joe@joe.com"},"label":[{"type":"PLAIN_TEXT","value":"joe@joe.com"}]}},{"type":"PLAIN_TEXT","value":". Try emailing him"}]}]"#,
    ),
    (
        "My email is fake@gmail.comf",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"My email is fake@gmail.comf"}]}]"#,
    ),
    (
        "mailto:asdf@asdf.com",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"mailto:asdf@asdf.com"},"label":[{"type":"PLAIN_TEXT","value":"asdf@asdf.com"}]}}]}]"#,
    ),
    (
        "+(075)63546725",
        r#"[{"type":"PARAGRAPH","value":[{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"tel:07563546725"},"label":[{"type":"PLAIN_TEXT","value":"+(075)63546725"}]}}]}]"#,
    ),
    (
        "5 +51231 5",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"5 "},{"type":"LINK","value":{"src":{"type":"PLAIN_TEXT","value":"tel:51231"},"label":[{"type":"PLAIN_TEXT","value":"+51231"}]}},{"type":"PLAIN_TEXT","value":" 5"}]}]"#,
    ),
    (
        "+1234",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"+1234"}]}]"#,
    ),
    // mentions
    (
        "@guilherme.gazzo",
        r#"[{"type":"PARAGRAPH","value":[{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"guilherme.gazzo"}}]}]"#,
    ),
    (
        "#GENERAL",
        r#"[{"type":"PARAGRAPH","value":[{"type":"MENTION_CHANNEL","value":{"type":"PLAIN_TEXT","value":"GENERAL"}}]}]"#,
    ),
    (
        "test @Кириллица test",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"test "},{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"Кириллица"}},{"type":"PLAIN_TEXT","value":" test"}]}]"#,
    ),
    (
        "@user:server.com",
        r#"[{"type":"PARAGRAPH","value":[{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"user:server.com"}}]}]"#,
    ),
    (
        "He#llo",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"He#llo"}]}]"#,
    ),
    (
        "hi @all and @here",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"hi "},{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"all"}},{"type":"PLAIN_TEXT","value":" and "},{"type":"MENTION_USER","value":{"type":"PLAIN_TEXT","value":"here"}}]}]"#,
    ),
    // emoji
    (
        ":smile: asd",
        r#"[{"type":"PARAGRAPH","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"},{"type":"PLAIN_TEXT","value":" asd"}]}]"#,
    ),
    (
        ":smile:asd",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":":smile:asd"}]}]"#,
    ),
    (
        "Hi :+1:",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"Hi "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"+1"},"shortCode":"+1"}]}]"#,
    ),
    (
        ":smile:",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"}]}]"#,
    ),
    (
        ":smile::smile::smile:",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"}]}]"#,
    ),
    (
        "😀",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","unicode":"😀"}]}]"#,
    ),
    (
        "Hi 👍",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"Hi "},{"type":"EMOJI","unicode":"👍"}]}]"#,
    ),
    (
        "👨‍👩‍👧‍👦",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","unicode":"👨‍👩‍👧‍👦"}]}]"#,
    ),
    (
        "❤️ 🇧🇷",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","unicode":"❤️"},{"type":"EMOJI","unicode":"🇧🇷"}]}]"#,
    ),
    (
        ":)",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"}]}]"#,
    ),
    (
        "Hi :)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"Hi "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"}]}]"#,
    ),
    (
        "he:)llo",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"he:)llo"}]}]"#,
    ),
    (
        ":) :) :) :)",
        r#"[{"type":"PARAGRAPH","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"},{"type":"PLAIN_TEXT","value":" "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"},{"type":"PLAIN_TEXT","value":" "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"},{"type":"PLAIN_TEXT","value":" "},{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":":)"},"shortCode":"slight_smile"}]}]"#,
    ),
    (
        "D:",
        r#"[{"type":"BIG_EMOJI","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"D:"},"shortCode":"fearful"}]}]"#,
    ),
    // quotes
    (
        "As Rocket Cat said:\n> meowww\n> grr.",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"As Rocket Cat said:"}]},{"type":"QUOTE","value":[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"meowww"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"grr."}]}]}]"#,
    ),
    (
        "> a\n>\n> *b*",
        r#"[{"type":"QUOTE","value":[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"a"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":""}]},{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"b"}]}]}]}]"#,
    ),
    (
        ">",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":">"}]}]"#,
    ),
    // headings
    (
        "# h1",
        r#"[{"type":"HEADING","level":1,"value":[{"type":"PLAIN_TEXT","value":"h1"}]}]"#,
    ),
    (
        "## Hello",
        r#"[{"type":"HEADING","level":2,"value":[{"type":"PLAIN_TEXT","value":"Hello"}]}]"#,
    ),
    (
        "#### Hello",
        r#"[{"type":"HEADING","level":4,"value":[{"type":"PLAIN_TEXT","value":"Hello"}]}]"#,
    ),
    (
        "##### Hello",
        r######"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"##### Hello"}]}]"######,
    ),
    (
        "#Hello",
        r#"[{"type":"PARAGRAPH","value":[{"type":"MENTION_CHANNEL","value":{"type":"PLAIN_TEXT","value":"Hello"}}]}]"#,
    ),
    (
        "# Hello\nworld",
        r#"[{"type":"HEADING","level":1,"value":[{"type":"PLAIN_TEXT","value":"Hello"}]},{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"world"}]}]"#,
    ),
    (
        "# *bold* heading",
        r#"[{"type":"HEADING","level":1,"value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"bold"}]},{"type":"PLAIN_TEXT","value":" heading"}]}]"#,
    ),
    // lists and tasks
    (
        "- First item\n- *Second item*\n- :smile:",
        r#"[{"type":"UNORDERED_LIST","value":[{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"First item"}]},{"type":"LIST_ITEM","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":"Second item"}]}]},{"type":"LIST_ITEM","value":[{"type":"EMOJI","value":{"type":"PLAIN_TEXT","value":"smile"},"shortCode":"smile"}]}]}]"#,
    ),
    (
        "* First item\n* Second item",
        r#"[{"type":"UNORDERED_LIST","value":[{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"First item"}]},{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"Second item"}]}]}]"#,
    ),
    (
        "- First item\n* Second item",
        r#"[{"type":"UNORDERED_LIST","value":[{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"First item"}]}]},{"type":"UNORDERED_LIST","value":[{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"Second item"}]}]}]"#,
    ),
    (
        "1. one\n2. two\n10. ten",
        r#"[{"type":"ORDERED_LIST","value":[{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"one"}],"number":1},{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"two"}],"number":2},{"type":"LIST_ITEM","value":[{"type":"PLAIN_TEXT","value":"ten"}],"number":10}]}]"#,
    ),
    (
        "- [x] done\n- [ ] todo",
        r#"[{"type":"TASKS","value":[{"type":"TASK","status":true,"value":[{"type":"PLAIN_TEXT","value":"done"}]},{"type":"TASK","status":false,"value":[{"type":"PLAIN_TEXT","value":"todo"}]}]}]"#,
    ),
    (
        "* a *b",
        r#"[{"type":"PARAGRAPH","value":[{"type":"BOLD","value":[{"type":"PLAIN_TEXT","value":" a "}]},{"type":"PLAIN_TEXT","value":"b"}]}]"#,
    ),
    // other markup
    (
        "||spoiler||",
        r#"[{"type":"PARAGRAPH","value":[{"type":"SPOILER","value":[{"type":"PLAIN_TEXT","value":"spoiler"}]}]}]"#,
    ),
    (
        "||\nhidden\n||",
        r#"[{"type":"SPOILER_BLOCK","value":[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"hidden"}]}]}]"#,
    ),
    ("\\[x^2\\]", r#"[{"type":"KATEX","value":"x^2"}]"#),
    (
        "inline \\(a+b\\) math",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"inline "},{"type":"INLINE_KATEX","value":"a+b"},{"type":"PLAIN_TEXT","value":" math"}]}]"#,
    ),
    (
        "color:#ff0000",
        r#"[{"type":"PARAGRAPH","value":[{"type":"COLOR","value":{"r":255,"g":0,"b":0,"a":255}}]}]"#,
    ),
    (
        "<t:1630360800:R>",
        r#"[{"type":"PARAGRAPH","value":[{"type":"TIMESTAMP","value":{"timestamp":"1630360800","format":"R"},"fallback":[0,16]}]}]"#,
    ),
    (
        "<t:2025-07-22T10:00:00.000+02:00>",
        r#"[{"type":"PARAGRAPH","value":[{"type":"TIMESTAMP","value":{"timestamp":"1753171200","format":"t"},"fallback":[0,33]}]}]"#,
    ),
    (
        "\\<t:1630360800>",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"<t:1630360800>"}]}]"#,
    ),
    ("---", r#"[{"type":"HORIZONTAL_RULE","fallback":[0,3]}]"#),
    (
        "| a | b |\n|---|:-:|\n| 1 | 2 |",
        r#"[{"type":"TABLE","value":{"header":[{"type":"TABLE_CELL","value":[{"type":"PLAIN_TEXT","value":"a"}]},{"type":"TABLE_CELL","align":"center","value":[{"type":"PLAIN_TEXT","value":"b"}]}],"rows":[{"type":"TABLE_ROW","value":[{"type":"TABLE_CELL","value":[{"type":"PLAIN_TEXT","value":"1"}]},{"type":"TABLE_CELL","align":"center","value":[{"type":"PLAIN_TEXT","value":"2"}]}]}]},"fallback":[0,29]}]"#,
    ),
    (
        "\\*not bold*",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"*not bold*"}]}]"#,
    ),
    (
        "1\\. not a list",
        r#"[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"1. not a list"}]}]"#,
    ),
];

#[test]
fn matches_rocket_chat_output() {
    let mut failures = Vec::new();
    for (input, expected) in CASES {
        let expected: Value = serde_json::from_str(expected).expect("valid expectation");
        let actual = parse(input);
        if actual != expected {
            failures.push(format!(
                "{input:?}\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn empty_text_has_no_blocks() {
    assert_eq!(parse(""), json!([]));
}

#[test]
fn options_switch_constructs() {
    let options = ParseOptions {
        colors: false,
        emoticons: false,
        katex_dollar_syntax: true,
        katex_parenthesis_syntax: false,
        custom_domains: vec!["intranet".to_string()],
    };
    let paragraph = |value: Value| json!([{"type": "PARAGRAPH", "value": value}]);
    let plain = |text: &str| json!({"type": "PLAIN_TEXT", "value": text});
    let cases = [
        ("a :) b", paragraph(json!([plain("a :) b")]))),
        ("color:#fff", paragraph(json!([plain("color:#fff")]))),
        ("\\(x\\)", paragraph(json!([plain("\\(x\\)")]))),
        (
            "$x^2$ and $$y$$",
            paragraph(json!([
                {"type": "INLINE_KATEX", "value": "x^2"},
                plain(" and "),
                {"type": "INLINE_KATEX", "value": ""},
                plain("y$$"),
            ])),
        ),
        (
            "internaltool.intranet",
            paragraph(json!([{"type": "LINK", "value": {
                "src": plain("//internaltool.intranet"),
                "label": [plain("internaltool.intranet")],
            }}])),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_with_options(input, &options), expected, "{input:?}");
    }
}

#[test]
fn time_of_day_timestamps_need_an_offset() {
    // Without an offset Rocket.Chat builds an invalid date and stores "0".
    let md = parse("<t:10:30>");
    assert_eq!(
        md[0]["value"][0]["value"],
        json!({"timestamp": "0", "format": "t"})
    );
    // With one, it is that time today.
    let md = parse("<t:10:30:00+02:00:R>");
    let node = &md[0]["value"][0];
    assert_eq!(node["type"], "TIMESTAMP");
    assert_eq!(node["fallback"], json!([0, 20]));
    let seconds: i64 = node["value"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((seconds - now).abs() < 2 * 86_400, "{seconds} vs {now}");
}

#[test]
fn long_emoticon_runs_keep_the_rest_of_the_line() {
    // Rocket.Chat recurses once per emoticon here; the runs are parsed iteratively instead.
    let text = format!("{} *b*", ":)".repeat(1000));
    let md = parse(&text);
    let items = md[0]["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["value"], format!("{} ", ":)".repeat(1000)));
    assert_eq!(
        items[1],
        json!({"type": "BOLD", "value": [{"type": "PLAIN_TEXT", "value": "b"}]})
    );
}

#[test]
fn abandoned_parse_falls_back_to_plain_lines() {
    let text = "*a* [b](c.com)\n\nsecond line";
    let md = parse_within(text, &ParseOptions::default(), 10);
    assert_eq!(
        md,
        json!([
            {"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": "*a* [b](c.com)"}]},
            {"type": "LINE_BREAK"},
            {"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": "second line"}]},
        ])
    );
}

#[test]
fn hostile_inputs_finish() {
    let inputs = [
        "**_**__".repeat(400),
        "[_".repeat(1500),
        "[*".repeat(1500),
        "*a _b ~c `d [e".repeat(150),
        "_a".repeat(3000),
        "x(".repeat(5000),
        "\\(".repeat(3000),
        ":):".repeat(1000),
        "|".repeat(5000),
        "> ".repeat(3000),
        "# ".repeat(3000),
        "- ".repeat(3000),
        "```\n".repeat(1000),
        "a\n".repeat(5000),
    ];
    for input in &inputs {
        assert_well_formed(input, &parse(input));
    }
}

#[test]
fn garbage_never_panics() {
    const POOL: &[&str] = &[
        "*",
        "**",
        "_",
        "__",
        "~",
        "~~",
        "`",
        "```",
        "|",
        "||",
        "[",
        "]",
        "(",
        ")",
        "](",
        "<",
        ">",
        "!",
        "@",
        "#",
        ":",
        ";",
        "$",
        "\\",
        "/",
        ".",
        ",",
        "+",
        "-",
        "=",
        "'",
        "\"",
        "%",
        "&",
        "?",
        "^",
        "{",
        "}",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\0",
        "\u{7f}",
        "a",
        "Z",
        "9",
        "é",
        "Þ",
        "日本",
        "Кир",
        "\u{301}",
        "\u{200d}",
        "\u{fe0f}",
        "\u{20e3}",
        "\u{a0}",
        "\u{2028}",
        "\u{feff}",
        "😀",
        "👍🏽",
        "🇧🇷",
        "🏴\u{e0067}\u{e0062}\u{e007f}",
        "\u{1f004}",
        "𝒳",
        "\u{10ffff}",
        ":)",
        ":smile:",
        "<t:",
        "1630360800",
        "T10:00:00",
        "+02:00",
        "color:#",
        "fff",
        "https://",
        "www.",
        ".com",
        "a@b.io",
        "+123456",
        "- [x] ",
        "1. ",
        "> ",
        "# ",
        "---",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    for round in 0..3000 {
        let pieces = 1 + next(if round % 100 == 0 { 400 } else { 24 });
        let text: String = (0..pieces).map(|_| POOL[next(POOL.len())]).collect();
        let md = parse(&text);
        assert_well_formed(&text, &md);
        let _ = parse_with_options(
            &text,
            &ParseOptions {
                katex_dollar_syntax: true,
                ..ParseOptions::default()
            },
        );
    }
}

/// A block list of known node types whose every string survived the round trip.
fn assert_well_formed(input: &str, md: &Value) {
    const BLOCKS: &[&str] = &[
        "PARAGRAPH",
        "CODE",
        "HEADING",
        "QUOTE",
        "SPOILER_BLOCK",
        "TASKS",
        "ORDERED_LIST",
        "UNORDERED_LIST",
        "KATEX",
        "LINE_BREAK",
        "HORIZONTAL_RULE",
        "TABLE",
        "BIG_EMOJI",
    ];
    let blocks = md
        .as_array()
        .unwrap_or_else(|| panic!("not an array for {input:?}: {md}"));
    assert!(
        !blocks.is_empty() || input.is_empty(),
        "no blocks for {input:?}"
    );
    for block in blocks {
        let kind = block["type"].as_str().unwrap_or_default();
        assert!(
            BLOCKS.contains(&kind),
            "unexpected block {block} for {input:?}"
        );
    }
    assert!(
        !md.to_string().contains('\u{fffd}') || input.contains('\u{fffd}'),
        "broken text for {input:?}"
    );
}
