from shield_server.cli import main

raise SystemExit(main())
