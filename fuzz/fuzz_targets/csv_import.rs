//! Arbitrary bytes as a CSV file, read with options chosen by the first
//! byte: header, plan and every row. Nothing may panic, every row is
//! either imported or rejected with its line, and no line is past the end.
#![no_main]

use audience_core::fields::FieldType;
use audience_core::import::{open, plan, read, Format, Input, Options};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, file)) = data.split_first() else { return };
    let on_conflict = ["update", "skip", "fill", "update"][(choice >> 1 & 3) as usize];
    let delimiter = ["auto", ";", "tab", ","][(choice >> 3 & 3) as usize];
    let options = json!({
        "encoding": if choice & 1 == 0 { "utf8" } else { "latin1" },
        "on_conflict": on_conflict,
        "delimiter": delimiter,
        "create_fields": choice & 32 != 0,
        "tags": if choice & 64 != 0 { json!(["Imported"]) } else { json!([]) },
    });
    let options = Options::from_json(&options, Format::Csv).expect("the options above are valid");
    let custom = [("budget".to_string(), FieldType::Number), ("signed_up".to_string(), FieldType::Date)];
    let Ok(mut records) = open(Input::Csv(file), &options) else { return };
    let Ok(Some(header)) = records.header() else { return };
    let Ok(plan) = plan(header, &options, &custom) else { return };
    let lines = 1 + file.iter().enumerate().filter(|(i, b)| **b == b'\n' || (**b == b'\r' && file.get(i + 1) != Some(&b'\n'))).count() as u64;
    let _ = read(&mut *records, &options, &plan, 7, |rows, rejections, _| {
        for row in &rows {
            assert!(row.line >= 2 && row.line <= lines, "row line {} of {lines}", row.line);
            assert!(!row.email().is_empty());
        }
        for rejection in &rejections {
            assert!(rejection.line <= lines, "rejection line {} of {lines}", rejection.line);
        }
        Ok(())
    });
});
