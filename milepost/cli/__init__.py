"""The `milepost` command: main.py builds it and loads each noun's module when that noun is
used; common.py holds what every command shares; one module per noun."""
