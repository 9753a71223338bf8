// Decodes GPP strings and US Privacy strings with the IAB Tech Lab's reference library,
// @iabgpp/cmpapi (GppModel, HeaderV1, UspV1), so hush-iab's encoder can be checked against it.
//
// Usage: node decode.mjs STRING...   or one string per line on stdin.
//
// Prints one JSON object per input line, in input order:
//   GPP:  {"input", "kind": "gpp", "headerSectionIds": [...], "sections": {"usnat": {...}, ...},
//          "reencoded": "..."}
//   USP:  {"input", "kind": "usp", "fields": {...}, "reencoded": "..."}
//   else: {"input", "error": "..."}            (and the exit status is 1)
// Each section's fields are the library's own field names and values, plus
// "GpcSegmentIncluded". "reencoded" is the string the library itself encodes from those
// decoded values in a fresh model, so it can be compared byte for byte with the input.

import { readFileSync } from "node:fs";
import { GppModel, HeaderV1, UspV1 } from "@iabgpp/cmpapi";

function gpcSegmentIncluded(model, sectionName) {
  try {
    return model.getFieldValue(sectionName, "GpcSegmentIncluded");
  } catch {
    return undefined;
  }
}

function decodeGpp(input) {
  const model = new GppModel(input);
  const sections = model.toObject();
  const fresh = new GppModel();
  for (const [name, fields] of Object.entries(sections)) {
    for (const [field, value] of Object.entries(fields)) {
      fresh.setFieldValue(name, field, value);
    }
    // Sections with a GPC sub-section know whether it was present; GppModel.hasField does
    // not list this flag, so it is read directly.
    const included = gpcSegmentIncluded(model, name);
    if (included !== undefined) {
      fields.GpcSegmentIncluded = included;
      fresh.setFieldValue(name, "GpcSegmentIncluded", included);
    }
  }
  return {
    input,
    kind: "gpp",
    // Straight from the header as written, not rebuilt from the sections found.
    headerSectionIds: new HeaderV1(input.split("~")[0]).getFieldValue("SectionIds"),
    sections,
    reencoded: fresh.encode(),
  };
}

function decodeUsp(input) {
  const fields = new UspV1(input).toObj();
  const fresh = new UspV1();
  for (const [field, value] of Object.entries(fields)) {
    fresh.setFieldValue(field, value);
  }
  return { input, kind: "usp", fields, reencoded: fresh.encode() };
}

const inputs =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readFileSync(0, "utf8")
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line.length > 0);

let failed = false;
for (const input of inputs) {
  let result;
  try {
    // A US Privacy string is exactly four characters; GPP strings start with the header.
    result = input.length === 4 ? decodeUsp(input) : decodeGpp(input);
  } catch (e) {
    failed = true;
    result = { input, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}
process.exitCode = failed ? 1 : 0;
