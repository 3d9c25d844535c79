//! Arbitrary bytes as a workbook (seeded with small real ones): opening,
//! the header, the plan and every row. A corrupt workbook is an error,
//! never a panic, and every row is imported or rejected below the header.
#![no_main]

use audience_core::fields::FieldType;
use audience_core::import::{open, plan, read, Format, Input, Options};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let options = Options::from_json(&json!({"create_fields": true}), Format::Workbook).expect("valid options");
    let custom = [("budget".to_string(), FieldType::Number), ("signed_up".to_string(), FieldType::Date)];
    let Ok(mut records) = open(Input::Workbook(data), &options) else { return };
    let Ok(Some(header)) = records.header() else { return };
    let header_line = header.line;
    let Ok(plan) = plan(header, &options, &custom) else { return };
    let _ = read(&mut *records, &options, &plan, 7, |rows, rejections, _| {
        for row in &rows {
            assert!(row.line > header_line, "row line {} above the header's {header_line}", row.line);
        }
        for rejection in &rejections {
            assert!(rejection.line >= header_line);
        }
        Ok(())
    });
});
