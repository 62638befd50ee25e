use super::*;

#[test]
fn smoke() {
    assert_eq!(
        parse("hi"),
        json!([{"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": "hi"}]}])
    );
}
