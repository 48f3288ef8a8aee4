"""Label values for numeric selectors (`>`, `<`), shared by the contract and admission-policy tests."""

# Label values as strconv.ParseInt reads them: leading zeros allowed; out of int64's range, or with Python's
# digit separators, no integer at all. tests/integration/test_admission_policy.py holds the policy to these.
NUMERIC_LABELS = {
    "seven": "0007",
    "largest": "9223372036854775807",
    "padded": "0" * 49 + "6",
    "overflow": "9223372036854775808",
    "separated": "1_000",
    "four": "4",
}
