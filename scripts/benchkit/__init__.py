"""The pieces of scripts/bench.py: one module per kind of contender, plus the report.

floors.py   bare-socket and bare-TLS copies: the ceilings to compare against
ftcases.py  ft itself (a real ftserver process, the Client API)
placement.py ft on its defaults, its share and state_dir each on tmpfs or on the disk
ftpcases.py pyftpdlib with ftplib (the bench extra)
external.py rsync's daemon and scp to a local sshd, when they are installed
httpcases.py the HTTP case: curl from ft, nginx and copyparty; curl -T and ftclient put
nginxserve.py nginx (nginx-light) on 127.0.0.1, its own prefix, for the HTTP case
copypartyserve.py copyparty (the bench extra) on 127.0.0.1, announcing nothing
httpreport.py the HTTP case's own section of the page: its targets and CPU per side
merge.py    --merge: one case's section into a page already written
report.py   targets, the Markdown page and the bar chart
figures.py  measured values, medians and spreads; data files; timing
procs.py    stopping helper servers by pid; a helper HTTP server that is up
"""
