from atrous_advisor.cli import main

main()
