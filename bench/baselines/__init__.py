"""What changelake is measured against: the straightforward implementations a row compares with."""
