"""The pieces of scripts/bench.py: one module per kind of contender, plus the report.

floors.py   bare-socket and bare-TLS copies: the ceilings to compare against
ftcases.py  ft itself (a real ftserver process, the Client API)
placement.py ft on its defaults, its share and state_dir each on tmpfs or on the disk
ftpcases.py pyftpdlib with ftplib (the bench extra)
external.py rsync's daemon and scp to a local sshd, when they are installed
report.py   targets, the Markdown page and the bar chart
figures.py  measured values, medians and spreads; data files; timing
procs.py    stopping helper servers by pid
"""
